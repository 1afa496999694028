"""Metrics function: hourly, compact and recompute the recent days of each app whose hour has come.

Trigger: an EventBridge scheduled event, hourly: each registered app whose metrics hour (two
hours before its report hour, local time) began since the previous run gets its last
``RECOMPUTE_DAYS`` complete days, in its own time zone, recomputed (once a local day; the time is
the event's, so a retried run decides the same). ``{"app_id": "A", "dates": ["YYYY-MM-DD", ...]}``
recomputes chosen days of one app (a backfill); ``{"all_apps": true}`` refreshes every app now.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from minidrama.config import app_or_default, load_apps
from minidrama.lake import S3Storage
from minidrama.metrics import compute_days, refresh_recent

logger = Logger()
tracer = Tracer()
metrics = Metrics()
storage = S3Storage(boto3.client("s3"), os.environ["LAKE_BUCKET"])
RECOMPUTE_DAYS = int(os.environ.get("RECOMPUTE_DAYS", "3"))
SCHEDULE_EVERY = timedelta(hours=1)  # the MetricsSchedule of template.yaml


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "app_id" in event:
        if not isinstance(event.get("dates"), list) or not event["dates"]:
            raise ValueError('a backfill event is {"app_id": "A", "dates": ["YYYY-MM-DD", ...]}')
        app = app_or_default(storage, event["app_id"])
        keys = compute_days(storage, app, [date.fromisoformat(text) for text in event["dates"]])
        metrics.add_metric(name="DocumentsWritten", unit=MetricUnit.Count, value=len(keys))
        return {"apps": [{"app_id": app.app_id, "documents": keys}]}

    now = (
        datetime.fromisoformat(event["time"].replace("Z", "+00:00")) if "time" in event else datetime.now(UTC)
    )
    apps = [
        app
        for app in load_apps(storage).values()
        if event.get("all_apps") or app.hour_began(app.metrics_hour, now, SCHEDULE_EVERY) is not None
    ]
    results, failures = [], []
    for app in apps:
        try:
            result = refresh_recent(storage, app, now, RECOMPUTE_DAYS)
        except Exception as error:
            # One app's failure must not stop the others; the run fails at the end so it is retried.
            logger.exception("metrics refresh failed", extra={"app_id": app.app_id})
            failures.append(f"{app.app_id}: {error}")
            continue
        logger.info("metrics refreshed", extra=result.summary())
        metrics.add_metric(name="DocumentsWritten", unit=MetricUnit.Count, value=len(result.documents))
        metrics.add_metric(
            name="PartitionsCompacted", unit=MetricUnit.Count, value=result.compacted_partitions
        )
        results.append(result.summary())
    if failures:
        raise RuntimeError("metrics refresh failed for " + "; ".join(failures))
    return {"apps": results}
