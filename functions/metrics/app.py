"""Metrics function: hourly, compact and recompute the recent days of each app whose hour has come.

Trigger: an EventBridge scheduled event, hourly: each registered app whose metrics hour (two
hours before its report hour, local time) began since the previous run gets its last
``RECOMPUTE_DAYS`` complete days, in its own time zone, recomputed (once a local day; the time is
the event's, so a retried run decides the same). ``{"app_id": "A", "dates": ["YYYY-MM-DD", ...]}``
recomputes chosen days of one app (a backfill); ``{"all_apps": true}`` refreshes every app now.

A day whose events files hold more than ``ATHENA_DAY_BYTES`` (0: never) is not computed here: its
run on the Athena engine is started (the ``ATHENA_STATE_MACHINE`` state machine runs its queries),
and the state machine calls back with ``{"assemble": <the run's input>}`` when every query has
succeeded; that call writes the day's facts and document, and the week and month documents
containing it. One metrics function at a time (reserved concurrency 1), so the facts index has
one writer.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from minidrama.config import AppConfig, app_or_default, load_apps
from minidrama.lake import S3Storage
from minidrama.metrics import AthenaRoute, compute_days, refresh_recent, write_calendar_documents
from minidrama.metrics.athena import assemble_day, execution_name, plan_day, plan_from_payload

logger = Logger()
tracer = Tracer()
metrics = Metrics()
BUCKET = os.environ["LAKE_BUCKET"]
storage = S3Storage(boto3.client("s3"), BUCKET)
RECOMPUTE_DAYS = int(os.environ.get("RECOMPUTE_DAYS", "3"))
SCHEDULE_EVERY = timedelta(hours=1)  # the MetricsSchedule of template.yaml
STATE_MACHINE = os.environ.get("ATHENA_STATE_MACHINE", "")
ATHENA_DAY_BYTES = int(os.environ.get("ATHENA_DAY_BYTES", "0"))
DATABASE = os.environ.get("GLUE_DATABASE", "minidrama")
states = boto3.client("stepfunctions") if STATE_MACHINE else None


def start_athena_day(app: AppConfig, day: date, request_id: str) -> str:
    """Start ``day``'s run on the Athena engine; the execution's ARN. The run is named by the
    invocation, which Lambda keeps when it retries one: a retried run finds its execution started
    instead of starting a second one."""
    assert states is not None
    run = hashlib.sha256(f"{request_id}|{app.app_id}|{day.isoformat()}".encode()).hexdigest()[:16]
    plan = plan_day(app, day, bucket=BUCKET, database=DATABASE, run=run)
    arn = f"{STATE_MACHINE.replace(':stateMachine:', ':execution:')}:{execution_name(plan)}"
    try:
        arn = states.start_execution(
            stateMachineArn=STATE_MACHINE, name=execution_name(plan), input=json.dumps(plan.payload())
        )["executionArn"]
    except states.exceptions.ExecutionAlreadyExists:
        logger.info("Athena run already started", extra={"execution": arn})
    logger.info(
        "day sent to the Athena engine",
        extra={"app_id": app.app_id, "day": day.isoformat(), "execution": arn},
    )
    return arn


def athena_route(request_id: str) -> AthenaRoute | None:
    if not STATE_MACHINE or not ATHENA_DAY_BYTES:
        return None
    return AthenaRoute(ATHENA_DAY_BYTES, lambda app, day: start_athena_day(app, day, request_id))


def assemble(payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The state machine's call once a run's queries have all succeeded: write the day."""
    app = app_or_default(storage, payload["app_id"])
    plan = plan_from_payload(payload, app, BUCKET)
    keys = assemble_day(storage, app, plan, generated_at=now)
    keys += write_calendar_documents(storage, app, [plan.day], now)
    logger.info(
        "Athena run assembled", extra={"app_id": app.app_id, "day": plan.day.isoformat(), "run": plan.run}
    )
    metrics.add_metric(name="DocumentsWritten", unit=MetricUnit.Count, value=len(keys))
    return {"app_id": app.app_id, "day": plan.day.isoformat(), "run": plan.run, "documents": keys}


def _started(route: AthenaRoute | None) -> list[dict[str, str]]:
    if route is None:
        return []
    metrics.add_metric(name="AthenaRunsStarted", unit=MetricUnit.Count, value=len(route.started))
    return [
        {"app_id": app_id, "day": day.isoformat(), "execution": arn} for app_id, day, arn in route.started
    ]


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "assemble" in event:
        return assemble(event["assemble"], datetime.now(UTC))
    route = athena_route(context.aws_request_id)
    if "app_id" in event:
        if not isinstance(event.get("dates"), list) or not event["dates"]:
            raise ValueError('a backfill event is {"app_id": "A", "dates": ["YYYY-MM-DD", ...]}')
        app = app_or_default(storage, event["app_id"])
        days = [date.fromisoformat(text) for text in event["dates"]]
        keys = compute_days(storage, app, days, athena=route)
        metrics.add_metric(name="DocumentsWritten", unit=MetricUnit.Count, value=len(keys))
        return {"apps": [{"app_id": app.app_id, "documents": keys}], "athena_runs": _started(route)}

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
            result = refresh_recent(storage, app, now, RECOMPUTE_DAYS, athena=route)
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
    return {"apps": results, "athena_runs": _started(route)}
