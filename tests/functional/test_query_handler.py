"""The query function behind API Gateway, on moto S3 + Secrets Manager: a token signed with the
stack's secret reads, any other does not, and no token reaches the logs."""

from __future__ import annotations

import copy
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from minidrama.config import AppConfig, register_app
from minidrama.ingestion import ingest_events
from minidrama.lake import LocalStorage, S3Storage
from minidrama.metrics import compute_days, query_range
from minidrama.simulator import simulate
from minidrama.tokens import issue_token, new_secret
from tests.conftest import LambdaContext, load_event, load_handler
from tests.contract import METRICS_PATH, assert_documented
from tests.metrics_support import without_generated_at

BUCKET = "minidrama-lake"
APP = "sample-app"
DAYS = [date(2026, 11, 1) + timedelta(days=offset) for offset in range(3)]
RANGE = {"from": ["2026-11-01"], "to": ["2026-11-03"]}
# The ingest sample is a real API Gateway event; the reads are the same with another method and path.
SAMPLE = load_event("ingest_request")


@pytest.fixture(scope="module")
def local_lake(tmp_path_factory: pytest.TempPathFactory) -> LocalStorage:
    """Three computed days of a small simulated app, to copy into the bucket."""
    lake = LocalStorage(tmp_path_factory.mktemp("query") / "lake")
    app, _key = register_app(lake, APP)
    for _day, events in simulate(DAYS[0], len(DAYS), seed=3, new_users_per_day=5):
        ingest_events(lake, app, events, received_at=datetime(2026, 11, 5, tzinfo=UTC))
    compute_days(lake, app, DAYS)
    return lake


@dataclass
class Stack:
    handler: ModuleType
    storage: S3Storage
    secret: bytes  # the value of the stack's read secret

    def get(self, path: str, query: dict[str, list[str]] | None, token: str | None) -> tuple[int, str, dict]:
        event = copy.deepcopy(SAMPLE)
        headers = {name: value for name, value in event["headers"].items() if name != "X-Api-Key"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        event |= {
            "httpMethod": "GET",
            "path": path,
            "resource": path,
            "body": None,
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": {name: values[-1] for name, values in query.items()} if query else None,
            "multiValueQueryStringParameters": query,
        }
        event["requestContext"]["httpMethod"] = "GET"
        response = self.handler.lambda_handler(event, LambdaContext())
        headers = dict(response.get("headers") or {})
        headers.update(
            {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()}
        )
        return response["statusCode"], response["body"], headers

    def token(self, secret: bytes | None = None, app_id: str = APP) -> str:
        expires_at = datetime.now(UTC) + timedelta(days=1)
        return issue_token(secret or self.secret, app_id, expires_at).token


@pytest.fixture
def stack(aws_env: None, local_lake: LocalStorage, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        storage = S3Storage(s3, BUCKET)
        for path in sorted(local_lake.root.rglob("*")):
            if path.is_file():
                storage.put_bytes(path.relative_to(local_lake.root).as_posix(), path.read_bytes())
        secret = new_secret()
        arn = boto3.client("secretsmanager").create_secret(Name="read-secret", SecretString=secret.decode())
        monkeypatch.setenv("LAKE_BUCKET", BUCKET)
        monkeypatch.setenv("READ_TOKEN_SECRET_ARN", arn["ARN"])
        monkeypatch.setenv("LOG_LEVEL", "DEBUG")  # the most the stack's LogLevel can log
        yield Stack(load_handler("query"), storage, secret)


def test_a_token_signed_with_the_stacks_secret_reads_a_range(stack: Stack, local_lake: LocalStorage) -> None:
    # WHEN API Gateway delivers a read with a token signed with the stack's secret
    status, body, headers = stack.get(f"/v1/apps/{APP}/metrics", RANGE, stack.token())
    # THEN the range document, computed from the bucket's facts, is the one the lake's facts give
    assert status == 200, body
    expected = query_range(local_lake, AppConfig(APP), DAYS[0], DAYS[-1])
    assert without_generated_at(json.loads(body)) == without_generated_at(expected)
    assert headers["Cache-Control"] == "no-store"
    assert_documented(status, json.loads(body), headers, path=METRICS_PATH, method="get")


@pytest.mark.parametrize(
    ("make_token", "app_id", "expected"),
    [
        (lambda stack: stack.token(secret=new_secret()), APP, (401, "invalid_token")),
        (lambda stack: None, APP, (401, "missing_token")),
        (lambda stack: stack.token(app_id="another-app"), APP, (403, "token_for_another_app")),
        (lambda stack: stack.token(app_id="ghost-app"), "ghost-app", (404, "unknown_app")),
    ],
    ids=["another secret", "no token", "another app's", "an app never registered"],
)
def test_any_other_token_is_refused(
    stack: Stack, make_token: Any, app_id: str, expected: tuple[int, str]
) -> None:
    status, body, headers = stack.get(f"/v1/apps/{app_id}/metrics", RANGE, make_token(stack))
    assert (status, json.loads(body)["error"]) == expected
    assert_documented(status, json.loads(body), headers, path=METRICS_PATH, method="get")


def test_a_rotated_secret_is_seen_within_the_cache_time(stack: Stack) -> None:
    # GIVEN a warm function that read the secret
    old = stack.token()
    assert stack.get(f"/v1/apps/{APP}/metrics/days", None, old)[0] == 200
    # WHEN the secret is rotated (Secrets Manager), and the function's cache has expired
    rotated = new_secret()
    boto3.client("secretsmanager").put_secret_value(
        SecretId=stack.handler.secret.secret_id, SecretString=rotated.decode()
    )
    stack.handler.secret.ttl_seconds = 0
    # THEN the old token is refused and a token of the new secret reads
    assert stack.get(f"/v1/apps/{APP}/metrics/days", None, old)[0] == 401
    assert stack.get(f"/v1/apps/{APP}/metrics/days", None, stack.token(secret=rotated))[0] == 200


def test_no_token_reaches_the_logs(
    stack: Stack, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # The function's Powertools logger keeps the stdout of its first import: point it at this test's.
    stack.handler.logger.registered_handler.setStream(sys.stdout)
    caplog.set_level(logging.DEBUG)
    # GIVEN reads answered 200, 401, 403, 404 and a 500 (a facts file damaged in the bucket)
    tokens = [stack.token(), stack.token(secret=new_secret()), stack.token(app_id="another-app")]
    for token in tokens:
        stack.get(f"/v1/apps/{APP}/metrics", RANGE, token)
        stack.get(f"/v1/apps/{APP}/metrics/daily", {"from": ["2026-10-01"], "to": ["2026-10-02"]}, token)
    facts = sorted(info.key for info in stack.storage.list("facts/") if "dt=2026-11-02" in info.key)
    stack.storage.put_bytes(facts[0], b"damaged")
    damaged = {"from": ["2026-11-02"], "to": ["2026-11-03"]}  # a range not cached yet
    assert stack.get(f"/v1/apps/{APP}/metrics", damaged, tokens[0])[0] == 500
    stack.handler.logger.info("the reads are done")
    # WHEN everything the function logged is read: Powertools' JSON lines on stdout, and every
    # record of every logger (the package's, Powertools', boto's) down to DEBUG
    logged = capsys.readouterr()
    everything = logged.out + logged.err + caplog.text
    # THEN both were captured (so the check means something), and no token is in them, whole or
    # its signature
    assert '"message":"the reads are done"' in logged.out
    assert "damaged facts" in caplog.text and len(caplog.records) > 10
    for token in tokens:
        assert token not in everything
        assert token.rsplit(".", 1)[1] not in everything
