"""The ingest function behind API Gateway, on moto S3 + SQS: every status, the queue, the quarantine."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from minidrama.config import hash_api_key
from minidrama.ingestion import MAX_BODY_BYTES
from minidrama.lake import APPS_CONFIG_KEY, S3Storage
from minidrama.queue import MAX_MESSAGE_BYTES, decode_message
from tests.conftest import LambdaContext, load_event, load_handler
from tests.contract import assert_documented

BUCKET = "minidrama-lake"
SAMPLE = load_event("ingest_request")
SAMPLE_KEY = SAMPLE["headers"]["X-Api-Key"]


@dataclass
class Stack:
    handler: ModuleType
    storage: S3Storage
    sqs: Any
    queue_url: str

    def call(self, event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, Any]]:
        response = self.handler.lambda_handler(event, LambdaContext())
        headers = dict(response.get("headers") or {})
        headers.update(
            {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()}
        )
        return response["statusCode"], json.loads(response["body"]), headers

    def queued_rows(self) -> list[tuple[str, dict[str, Any]]]:
        found = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                return found
            for message in batch:
                assert len(message["Body"].encode()) <= MAX_MESSAGE_BYTES
                app_id, rows = decode_message(message["Body"])
                found.extend((app_id, row) for row in rows)
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def quarantined(self) -> list[dict[str, Any]]:
        return [
            json.loads(line)
            for info in self.storage.list("quarantine/")
            for line in self.storage.get_bytes(info.key).decode().splitlines()
        ]


@pytest.fixture
def stack(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="minidrama-events")["QueueUrl"]
        monkeypatch.setenv("LAKE_BUCKET", BUCKET)
        monkeypatch.setenv("QUEUE_URL", queue_url)
        storage = S3Storage(s3, BUCKET)
        apps = {"apps": {"sample-app": {"timezone": "UTC", "currency": "USD", "recipients": []}}}
        apps["apps"]["sample-app"]["api_key_sha256"] = hash_api_key(SAMPLE_KEY)  # type: ignore[assignment]
        storage.put_bytes(APPS_CONFIG_KEY, json.dumps(apps).encode())
        yield Stack(load_handler("ingest"), storage, sqs, queue_url)


def request(
    events: Any = None,
    *,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    app_id: str = "sample-app",
) -> dict[str, Any]:
    """The sample API Gateway event with another body, headers or app."""
    event = copy.deepcopy(SAMPLE)
    if body is not None or events is not None:
        event["body"] = body if body is not None else json.dumps({"events": events})
    if headers is not None:
        event["headers"] = headers
        event["multiValueHeaders"] = {name: [value] for name, value in headers.items()}
    event["path"] = f"/v1/apps/{app_id}/events"
    event["pathParameters"] = {"app_id": app_id}
    return event


def sample_events() -> list[dict[str, Any]]:
    return json.loads(SAMPLE["body"])["events"]


def test_the_sample_request_is_accepted_and_enqueued(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN API Gateway delivers the sample request
    status, body, headers = stack.call(SAMPLE)
    # THEN 202 with every event accepted, and the queue holds them, typed and exact
    assert status == 202
    assert body == {"accepted": 3, "rejected": []}
    assert headers["Content-Type"] == "application/json"
    rows = stack.queued_rows()
    assert {app_id for app_id, _row in rows} == {"sample-app"}
    by_id = {row["event_id"]: row for _app_id, row in rows}
    assert sorted(by_id) == ["launch-0001", "order-0001", "visit-0001"]
    assert str(by_id["order-0001"]["amount"]) == "4.990000"
    assert by_id["visit-0001"]["event_time"].isoformat() == "2026-11-28T03:02:00+00:00"
    assert stack.quarantined() == []
    # AND the accepted/rejected counts are published as metrics
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert metrics and metrics[-1]["AcceptedEvents"] == [3.0] and metrics[-1]["RejectedEvents"] == [0.0]


def test_rejected_events_are_answered_and_quarantined(stack: Stack) -> None:
    events = sample_events()
    events[1]["properties"]["amount"] = -1
    events.insert(0, "not an event")
    status, body, _headers = stack.call(request(events))
    assert status == 202
    assert body["accepted"] == 2
    assert [(r["index"], r["event_id"]) for r in body["rejected"]] == [(0, None), (2, "order-0001")]
    assert body["rejected"][1]["errors"] == ["amount: must be > 0, got -1"]
    quarantined = sorted(stack.quarantined(), key=lambda record: record["index"])
    assert [record["index"] for record in quarantined] == [0, 2]
    assert quarantined[1]["raw"]["properties"]["amount"] == -1
    assert (
        quarantined[1]["app_id"] == "sample-app" and quarantined[1]["errors"] == body["rejected"][1]["errors"]
    )
    assert len(stack.queued_rows()) == 2


def test_a_base64_encoded_body_is_decoded(stack: Stack) -> None:
    event = request()
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    status, body, _headers = stack.call(event)
    assert (status, body["accepted"]) == (202, 3)


@pytest.mark.parametrize(
    ("make_event", "status", "error"),
    [
        (lambda: request(headers={"Content-Type": "application/json"}), 401, "missing_api_key"),
        (lambda: request(headers={"x-api-key": "mdk_wrong"}), 403, "invalid_api_key"),
        (lambda: request(app_id="ghost-app"), 404, "unknown_app"),
        (lambda: request(body="{not json"), 400, "malformed_request"),
        (lambda: request(body='{"events": "many"}'), 400, "malformed_request"),
        (lambda: request(body=None, headers=None) | {"body": None}, 400, "malformed_request"),
        (lambda: request(sample_events() * 334), 413, "payload_too_large"),
        (lambda: request(body=" " * (MAX_BODY_BYTES + 1)), 413, "payload_too_large"),
        (lambda: request(headers={"X-API-KEY": SAMPLE_KEY}), 202, None),
        (lambda: request(headers={"x-api-key": SAMPLE_KEY}), 202, None),
    ],
    ids=[
        "missing key",
        "wrong key",
        "unknown app",
        "malformed",
        "wrong shape",
        "no body",
        "too many events",
        "too big",
        "upper-case header",
        "lower-case header",
    ],
)
def test_every_status_code(stack: Stack, make_event: Any, status: int, error: str | None) -> None:
    answered, body, headers = stack.call(make_event())
    assert answered == status
    assert_documented(answered, body, headers)
    if error:
        assert body["error"] == error and body["message"]
        assert stack.queued_rows() == []


def test_a_full_request_is_split_into_messages_within_the_sqs_limits(stack: Stack) -> None:
    # GIVEN 1,000 events of about 900 bytes each (close to the 1 MiB body limit)
    events = []
    for n in range(1_000):
        event = copy.deepcopy(sample_events()[2])
        event["event_id"] = f"visit-{n:04d}"
        event["properties"]["note"] = "n" * 800
        events.append(event)
    # WHEN sent (moto refuses messages and batches over 256 KiB)
    status, body, _headers = stack.call(request(events))
    # THEN all are accepted and every one is on the queue once
    assert (status, body["accepted"]) == (202, 1_000)
    assert sorted(row["event_id"] for _app, row in stack.queued_rows()) == [
        f"visit-{n:04d}" for n in range(1_000)
    ]


def test_entries_sqs_reports_failed_are_retried(stack: Stack) -> None:
    # GIVEN the function's own SQS client failing one entry of the first call, then taking the retry
    stubber = Stubber(stack.handler.sink.client)
    stubber.add_response(
        "send_message_batch",
        {
            "Successful": [],
            "Failed": [{"Id": "0", "SenderFault": False, "Code": "ServiceUnavailable", "Message": "busy"}],
        },
    )
    stubber.add_response(
        "send_message_batch",
        {"Successful": [{"Id": "0", "MessageId": "m-1", "MD5OfMessageBody": "x" * 32}], "Failed": []},
    )
    # WHEN the sample request arrives
    with stubber:
        status, body, _headers = stack.call(SAMPLE)
    # THEN it is accepted after the retry
    stubber.assert_no_pending_responses()
    assert (status, body["accepted"]) == (202, 3)


def test_entries_failing_every_retry_answer_503(stack: Stack) -> None:
    stubber = Stubber(stack.handler.sink.client)
    failed = {"Successful": [], "Failed": [{"Id": "0", "SenderFault": False, "Code": "InternalError"}]}
    for _attempt in range(stack.handler.sink.max_attempts):
        stubber.add_response("send_message_batch", failed)
    with stubber:
        status, body, headers = stack.call(SAMPLE)
    stubber.assert_no_pending_responses()
    assert status == 503 and body["error"] == "unavailable"
    assert headers["Retry-After"] == "1"
    assert_documented(status, body, headers)


def test_an_sqs_error_on_the_whole_call_answers_503(stack: Stack) -> None:
    stubber = Stubber(stack.handler.sink.client)
    stubber.add_client_error(
        "send_message_batch", "AWS.SimpleQueueService.NonExistentQueue", http_status_code=400
    )
    with stubber:
        status, body, _headers = stack.call(SAMPLE)
    assert status == 503 and "retry" in body["message"]


def test_other_routes_are_404(stack: Stack) -> None:
    event = request()
    event["path"] = "/v1/apps/sample-app/other"
    event["resource"] = "/{proxy+}"
    status, body, headers = stack.call(event)
    assert (status, body["error"]) == (404, "not_found")
    assert_documented(status, body, headers)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"])
def test_other_methods_on_the_events_path_are_405(stack: Stack, method: str) -> None:
    # GIVEN the sample request with another method (API Gateway routes only POST; the router is shared)
    event = request()
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    # WHEN resolved
    status, body, headers = stack.call(event)
    # THEN 405 naming the method, with Allow: POST, and nothing enqueued
    assert (status, body["error"], headers["Allow"]) == (405, "method_not_allowed", "POST")
    assert method in body["message"]
    assert_documented(status, body, headers)
    assert stack.queued_rows() == []


def test_a_route_that_fails_answers_500_in_the_contract_shape(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN publishing the metrics fails (a bug or an outage after the events were enqueued)
    def fail(**_kwargs: Any) -> None:
        raise RuntimeError("metrics down")

    monkeypatch.setattr(stack.handler.metrics, "add_metric", fail)
    # WHEN a request arrives
    status, body, headers = stack.call(SAMPLE)
    # THEN the answer is JSON 500 internal_error, not a Lambda error (API Gateway's 502)
    assert (status, body["error"]) == (500, "internal_error")
    assert_documented(status, body, headers)
