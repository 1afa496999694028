"""Query function: the read API and the dashboard behind API Gateway (REST API, proxy integration).

``GET /v1/apps/{app_id}/metrics`` (range documents from the stored facts, DuckDB),
``.../metrics/daily``, ``.../metrics/days``, the dashboard page and its files. Read tokens are
checked against the stack's read secret in Secrets Manager (re-read every 5 minutes, so a
rotation reaches a warm function within that). The routes are
:func:`minidrama.router.build_router`'s, the same that ``minidrama serve`` resolves locally.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from minidrama.api import AppDirectory
from minidrama.lake import S3Storage
from minidrama.reading import Reader
from minidrama.router import build_router
from minidrama.tokens import SecretsManagerSecret

logger = Logger()
tracer = Tracer()

storage = S3Storage(boto3.client("s3"), os.environ["LAKE_BUCKET"])
directory = AppDirectory(storage, ttl_seconds=60.0)
secret = SecretsManagerSecret(boto3.client("secretsmanager"), os.environ["READ_TOKEN_SECRET_ARN"])
# Range documents stay cached in the warm function, by the facts files they come from.
reader = Reader(storage, directory, secret)
app = build_router(directory=directory, storage=storage, reader=reader)


# No event is logged: its Authorization header carries the caller's read token.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
