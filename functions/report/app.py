"""Report function: on the daily schedule, render, store and email each registered app's report.

Trigger: an EventBridge scheduled event (every app, its latest complete day in its own time
zone), or ``{"app_id": "A", "date": "YYYY-MM-DD"}`` to (re)send one report explicitly.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from minidrama.lake import S3Storage
from minidrama.report import DeliveryError, publish_report, report_requests

logger = Logger()
tracer = Tracer()
storage = S3Storage(boto3.client("s3"), os.environ["LAKE_BUCKET"])
ses = boto3.client("ses")
SENDER_EMAIL = os.environ["SENDER_EMAIL"]
# For apps that list no recipients of their own (comma separated; may be empty).
DEFAULT_RECIPIENTS = [
    address.strip() for address in os.environ.get("DEFAULT_RECIPIENTS", "").split(",") if address.strip()
]


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    results, failures = [], []
    for request in report_requests(storage, event, now=datetime.now(UTC)):
        try:
            result = publish_report(
                storage,
                request.app,
                request.day,
                sender=SENDER_EMAIL,
                ses_client=ses,
                default_recipients=DEFAULT_RECIPIENTS,
            )
        except DeliveryError as error:
            # One app's refused mail must not stop the others; the run fails at the end so it is retried.
            logger.exception("report delivery failed", extra={"app_id": request.app.app_id})
            failures.append(str(error))
            continue
        if result.status != "complete":
            logger.warning("report incomplete, not sent", extra=result.summary())
        else:
            logger.info("report published", extra=result.summary())
        results.append(result.summary())
    if failures:
        raise DeliveryError("; ".join(failures))
    return {"reports": results}
