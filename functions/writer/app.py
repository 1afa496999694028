"""Writer function: SQS batches of accepted events to Parquet, one file per (app, date, hour) partition.

The whole batch is decoded, grouped by partition and written at once; messages of a partition
that could not be written, and undecodable messages, are reported in ``batchItemFailures``
(the event source mapping has ``ReportBatchItemFailures``), so only they come back and a
poison message ends in the dead-letter queue (see ``minidrama.writer``).
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

from minidrama.lake import S3Storage
from minidrama.writer import PartitionBatchProcessor, decode_record

logger = Logger()
tracer = Tracer()
metrics = Metrics()

storage = S3Storage(boto3.client("s3"), os.environ["LAKE_BUCKET"])
processor = PartitionBatchProcessor(storage, logger=logger)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=decode_record, processor=processor, context=context
    )
    outcome = processor.outcome
    metrics.add_metric(name="WrittenEvents", unit=MetricUnit.Count, value=outcome.rows_written)
    metrics.add_metric(name="WrittenFiles", unit=MetricUnit.Count, value=len(outcome.keys))
    metrics.add_metric(name="FailedMessages", unit=MetricUnit.Count, value=len(response["batchItemFailures"]))
    return dict(response)
