"""Report function: on the hourly schedule, render, store and email the reports that are due.

Trigger: an EventBridge scheduled event (each registered app at its report hour in its own time
zone: the daily report of its previous day, and on Mondays / the 1st the weekly / monthly report
where its ``reports`` setting asks), or ``{"app_id": "A", "date": "YYYY-MM-DD"}`` (or ``"week":
"2026-W48"``, ``"month": "2026-11"``) to render (and send, to whoever hasn't had it) one report
explicitly. A report whose metrics are missing is marked incomplete and not sent; a report
already sent to a recipient is not sent again. See :func:`minidrama.report.report_requests`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from minidrama.dashboard import DashboardLinks
from minidrama.lake import S3Storage
from minidrama.report import publish_report, report_requests
from minidrama.tokens import SecretsManagerSecret

logger = Logger()
tracer = Tracer()
metrics = Metrics()
storage = S3Storage(boto3.client("s3"), os.environ["LAKE_BUCKET"])
ses = boto3.client("ses")
SENDER_EMAIL = os.environ["SENDER_EMAIL"]
# For apps that list no recipients of their own (comma separated; may be empty).
DEFAULT_RECIPIENTS = [
    address.strip() for address in os.environ.get("DEFAULT_RECIPIENTS", "").split(",") if address.strip()
]
# Each email links to its day on the dashboard with a read token valid DASHBOARD_LINK_DAYS days.
LINKS = (
    DashboardLinks(
        os.environ["DASHBOARD_BASE_URL"],
        SecretsManagerSecret(boto3.client("secretsmanager"), os.environ["READ_TOKEN_SECRET_ARN"]),
        int(os.environ.get("DASHBOARD_LINK_DAYS", "14")),
    )
    if os.environ.get("DASHBOARD_BASE_URL") and os.environ.get("READ_TOKEN_SECRET_ARN")
    else None
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    requests = report_requests(storage, event, now=datetime.now(UTC))
    metrics.add_metric(name="ReportsRequested", unit=MetricUnit.Count, value=len(requests))
    results, failures = [], []
    for request in requests:
        try:
            result = publish_report(
                storage,
                request.app,
                request.period,
                sender=SENDER_EMAIL,
                ses_client=ses,
                default_recipients=DEFAULT_RECIPIENTS,
                links=LINKS,
            )
        except Exception as error:
            # One app's failure (refused mail, an unreadable document) must not stop the others;
            # the run fails at the end so it is retried and the errors alarm sees it.
            logger.exception("report failed", extra={"app_id": request.app.app_id})
            metrics.add_metric(name="ReportFailures", unit=MetricUnit.Count, value=1)
            failures.append(f"{request.app.app_id}: {error}")
            continue
        if result.status == "complete":
            logger.info("report published", extra=result.summary())
            sent = result.delivery.summary()["sent"] if result.delivery else 0
            metrics.add_metric(name="ReportEmailsSent", unit=MetricUnit.Count, value=sent)
        elif result.status == "no_events":
            # The app sent nothing all day: an operator should look (ReportsWithoutEventsAlarm).
            logger.warning("no events received, report not sent", extra=result.summary())
            metrics.add_metric(name="ReportsWithoutEvents", unit=MetricUnit.Count, value=1)
        else:
            logger.warning("report incomplete, not sent", extra=result.summary())
            metrics.add_metric(name="ReportsIncomplete", unit=MetricUnit.Count, value=1)
        results.append(result.summary())
    if failures:
        raise RuntimeError("reports failed for " + "; ".join(failures))
    return {"reports": results}
