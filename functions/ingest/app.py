"""Ingest function: the HTTP API behind API Gateway (REST API, proxy integration).

``POST /v1/apps/{app_id}/events`` validates the batch, quarantines rejected events in the lake,
enqueues accepted ones on SQS for the writer function, and answers 202 only once both are
durable. The routes are :func:`minidrama.router.build_router`'s, the same that ``minidrama serve``
resolves locally.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from minidrama.api import ApiResponse, AppDirectory
from minidrama.lake import S3Storage
from minidrama.queue import SqsSink
from minidrama.router import build_router

logger = Logger()
tracer = Tracer()
metrics = Metrics()

storage = S3Storage(boto3.client("s3"), os.environ["LAKE_BUCKET"])
sink = SqsSink(boto3.client("sqs"), os.environ["QUEUE_URL"])
# config/apps.json is re-read every minute (sooner for an unknown app or key), not per request.
directory = AppDirectory(storage, ttl_seconds=60.0)


def record_answer(app_id: str, answer: ApiResponse) -> None:
    metrics.add_metric(name="AcceptedEvents", unit=MetricUnit.Count, value=answer.accepted)
    metrics.add_metric(name="RejectedEvents", unit=MetricUnit.Count, value=answer.rejected)
    logger.info(
        "answered",
        extra={
            "app_id": app_id,
            "status": answer.status,
            "accepted": answer.accepted,
            "rejected": answer.rejected,
        },
    )


app = build_router(directory=directory, storage=storage, sink=sink, on_answer=record_answer)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
