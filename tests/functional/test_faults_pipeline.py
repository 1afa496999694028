"""Faults injected on the way in: the ingest function's S3 and SQS calls, the writer function's S3 writes.

Every call of every operation a fault-free run makes is failed in turn, in every mode of
``tests/faults.py`` and with every error code. After each fault the step is retried the way AWS
retries it (API clients resend a request answered 503; SQS delivers again the messages reported in
``batchItemFailures``, or the whole batch when the invocation failed), and what is stored is
compared with a fault-free run: nothing acknowledged is lost, and no event is stored in two
different versions (copies of one ``event_id`` are exact, so the readers' deduplication counts it once).
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto import mock_aws

from minidrama.config import hash_api_key
from minidrama.lake import APPS_CONFIG_KEY, S3Storage
from minidrama.queue import decode_message, encode_row, pack_messages
from tests.conftest import LambdaContext, load_event, load_handler
from tests.faults import FaultInjector, Tally, plan, rotated
from tests.functional.test_writer_handler import sqs_event
from tests.rows import make_order, make_row

BUCKET = "minidrama-faults"


def _empty(prefix: str = "") -> None:
    """Delete what the previous case stored (by a client no fault is injected into)."""
    boto3.resource("s3").Bucket(BUCKET).objects.filter(Prefix=prefix).delete()


# --- the writer function ----------------------------------------------------------------------


def _writer_batch() -> tuple[dict[str, Any], dict[str, list[tuple[str, dict[str, Any]]]]]:
    """An SQS batch whose messages share partitions (m1 has rows in two hours, m3 is another app)."""

    def at(hour: int, n: int, order: bool = False) -> dict[str, Any]:
        build = make_order if order else make_row
        return build(n, event_time=datetime(2026, 11, 28, hour, n % 60, tzinfo=UTC))

    messages = {
        "app-1": [
            [at(10, n) for n in range(5)],
            [at(10, 5), at(10, 6), at(11, 7), at(11, 8, order=True)],
            [at(12, n) for n in range(9, 12)],
        ],
        "app-2": [[at(10, n) for n in range(12, 15)]],
    }
    bodies, rows = [], {}
    for app_id, groups in messages.items():
        for group in groups:
            (body,) = pack_messages(app_id, [encode_row(row) for row in group])
            rows[f"message-{len(bodies):03d}"] = [(app_id, row) for row in group]
            bodies.append(body)
    return sqs_event(bodies), rows


def _stored(storage: S3Storage) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every stored copy of every event, by (app, event_id)."""
    copies: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for info in storage.list("events/"):
        app_id = info.key.split("/")[1].removeprefix("app_id=")
        for row in pq.read_table(io.BytesIO(storage.get_bytes(info.key))).to_pylist():
            copies.setdefault((app_id, row["event_id"]), []).append(row)
    return copies


@pytest.fixture
def writer(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("LAKE_BUCKET", BUCKET)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield load_handler("writer")


def _invoke(handler: ModuleType, event: dict[str, Any]) -> set[str]:
    """The messages SQS will deliver again: those reported failed, or all when the invocation failed."""
    try:
        response = handler.lambda_handler(event, LambdaContext())
    except BatchProcessingError:
        return {record["messageId"] for record in event["Records"]}
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_writer_faults_at_every_put_lose_and_double_nothing(writer, no_retry_sleep, record_property):
    # GIVEN a batch of four messages over four partitions, and what a fault-free run stores
    event, rows_of = _writer_batch()
    storage = writer.storage
    injector = FaultInjector(storage.client)
    assert _invoke(writer, event) == set()
    expected = {key: copies[0] for key, copies in _stored(storage).items()}
    faults = plan(injector.calls, {"PutObject": ("refused", "answer-lost", "once")})
    assert injector.calls["PutObject"] == 4 and len(faults) == 48
    tally = Tally("writer")

    for fault in faults:
        _empty()
        # WHEN the Nth write of the batch fails
        injector.arm(fault)
        retries_before = len(no_retry_sleep)
        failed = _invoke(writer, event)
        fired, injector_targets = list(injector.fired), list(injector.targets)
        injector.arm(None)
        tally.case(fired)
        assert fired == [fault], fault

        # THEN the messages not reported failed are stored in full (SQS deletes them now) ...
        stored = _stored(storage)
        acknowledged = [row for message, rows in rows_of.items() if message not in failed for row in rows]
        missing = [row["event_id"] for app_id, row in acknowledged if (app_id, row["event_id"]) not in stored]
        tally.lost += len(missing)
        assert not missing, (fault, missing)
        # ... and exactly the messages with rows in the partition not written are reported, unless
        # botocore's retry got the write through
        if fault.retried_by_botocore:
            assert len(no_retry_sleep) == retries_before + 1, fault  # botocore backed off, then retried
            assert failed == set() and {key: copies[0] for key, copies in stored.items()} == expected
        else:
            (target,) = injector_targets
            app_id, hour = target.split("/")[1].removeprefix("app_id="), target.split("/")[3]
            contributors = {
                message
                for message, rows in rows_of.items()
                if any(a == app_id and f"hour={row['event_time'].hour:02d}" == hour for a, row in rows)
            }
            assert failed == contributors, fault

        # WHEN SQS delivers the failed messages again (no more faults) until none fails
        for _attempt in range(3):
            if not failed:
                break
            failed = _invoke(writer, {"Records": [r for r in event["Records"] if r["messageId"] in failed]})
        assert not failed, fault

        # THEN every event is stored, and all its copies are the fault-free row
        stored = _stored(storage)
        tally.lost += len(set(expected) - set(stored))
        tally.doubled += sum(
            1 for key, copies in stored.items() if any(row != expected.get(key) for row in copies)
        )
        assert set(stored) == set(expected), fault
        assert all(row == expected[key] for key, copies in stored.items() for row in copies), fault

    tally.record(record_property)
    assert (tally.lost, tally.doubled) == (0, 0)


# --- the ingest function ----------------------------------------------------------------------

SAMPLE = load_event("ingest_request")
SAMPLE_KEY = SAMPLE["headers"]["X-Api-Key"]


@pytest.fixture
def ingest_stack(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="minidrama-events")["QueueUrl"]
        monkeypatch.setenv("LAKE_BUCKET", BUCKET)
        monkeypatch.setenv("QUEUE_URL", queue_url)
        apps = {"apps": {"sample-app": {"timezone": "UTC", "currency": "USD", "recipients": []}}}
        apps["apps"]["sample-app"]["api_key_sha256"] = hash_api_key(SAMPLE_KEY)  # type: ignore[assignment]
        S3Storage(s3, BUCKET).put_bytes(APPS_CONFIG_KEY, json.dumps(apps).encode())
        yield {"s3": s3, "sqs": sqs, "queue_url": queue_url}


def _ingest_request() -> tuple[dict[str, Any], int, int]:
    """A request of 15 events of about 25 KB (two SQS messages, sent apart), 2 of them rejected."""
    samples = json.loads(SAMPLE["body"])["events"]
    events: list[Any] = []
    for n in range(14):
        body = copy.deepcopy(samples[n % 3])
        body["event_id"] = f"evt-{n:04d}"
        body["properties"]["note"] = "n" * 25_000
        events.append(body)
    events[10]["properties"]["amount"] = -1  # an order with a negative amount
    events.insert(0, "not an event")
    request = copy.deepcopy(SAMPLE)
    request["body"] = json.dumps({"events": events})
    return request, 13, 2


def _drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    rows = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            rows.extend(decode_message(message["Body"])[1])
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)],
        )
    return rows


def _without_receipt(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != "received_at"}


def _quarantined(s3: Any) -> list[int]:
    storage = S3Storage(s3, BUCKET)
    return [
        json.loads(line)["index"]
        for info in storage.list("quarantine/")
        for line in storage.get_bytes(info.key).decode().splitlines()
    ]


def _post(handler: ModuleType, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = handler.lambda_handler(request, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def _fresh_ingest_function() -> tuple[ModuleType, FaultInjector, FaultInjector]:
    """The function as a new execution environment loads it (its configuration cache empty)."""
    handler = load_handler("ingest")
    handler.sink.sleep = lambda _seconds: None  # the sink's own backoff between retries of failed entries
    return handler, FaultInjector(handler.storage.client), FaultInjector(handler.sink.client)


# config/apps.json and config/rates.json are read by a new execution environment only (then cached);
# rates.json is absent, so its GET fails by itself and has no answer to lose.
COLD_MODES = {"GetObject": ("refused", "once")}
S3_MODES = {"PutObject": ("refused", "answer-lost", "once")}
SQS_MODES = {"SendMessageBatch": ("refused", "answer-lost")}
# Entries SQS reports failed: the sink tells them apart by SenderFault only, so the codes take turns.
SQS_PARTIAL_MODES = {"SendMessageBatch": ("partial", "partial-sender", "partial-always")}


def test_ingest_faults_at_every_call_answer_503_or_lose_nothing(
    ingest_stack, no_retry_sleep, record_property
):
    # GIVEN a request of 15 events (2 rejected), and what a fault-free run enqueues and quarantines
    s3, sqs, queue_url = ingest_stack["s3"], ingest_stack["sqs"], ingest_stack["queue_url"]
    request, accepted, rejected = _ingest_request()
    cold, cold_s3, _cold_sqs = _fresh_ingest_function()
    status, body = _post(cold, request)
    assert (status, body["accepted"], len(body["rejected"])) == (202, accepted, rejected)
    expected = {row["event_id"]: _without_receipt(row) for row in _drain(sqs, queue_url)}
    quarantined = sorted(_quarantined(s3))
    assert len(expected) == accepted and len(quarantined) == rejected
    warm, warm_s3, warm_sqs = _fresh_ingest_function()
    for _request in range(2):  # the second request finds the configuration cached
        warm_s3.arm(None)
        warm_sqs.arm(None)
        _post(warm, request)
        _drain(sqs, queue_url)
    faults = [
        *(("cold", fault) for fault in plan(cold_s3.calls, COLD_MODES)),
        *(("s3", fault) for fault in plan(warm_s3.calls, S3_MODES)),
        *(("sqs", fault) for fault in plan(warm_sqs.calls, SQS_MODES)),
        *(("sqs", fault) for fault in rotated(plan(warm_sqs.calls, SQS_PARTIAL_MODES))),
    ]
    # (apps and rates read when cold, one quarantine file, several SQS sends)
    assert (cold_s3.calls["GetObject"], warm_s3.calls["GetObject"], warm_s3.calls["PutObject"]) == (2, 0, 1)
    assert warm_sqs.calls["SendMessageBatch"] >= 2
    tally = Tally("ingest")

    for client, fault in faults:
        _empty("quarantine/")
        if client == "cold":
            handler, injector, _sqs_faults = _fresh_ingest_function()
        else:
            handler, injector = warm, warm_s3 if client == "s3" else warm_sqs
        # WHEN the Nth call of the operation goes wrong
        injector.arm(fault)
        status, body = _post(handler, request)
        fired = list(injector.fired)
        injector.arm(None)
        tally.case(fired)
        assert fired, fault
        queued = _drain(sqs, queue_url)

        # THEN either 202 with every accepted event enqueued (the sink retried entries SQS failed) ...
        absorbed = fault.retried_by_botocore or fault.mode == "partial"
        if status == 202:
            assert absorbed, fault
            missing = set(expected) - {row["event_id"] for row in queued}
            tally.lost += len(missing)
            assert not missing and len(queued) == len(expected), fault
            assert sorted(_quarantined(s3)) == quarantined
            continue
        # ... or 503, which tells the client to send the same request again
        assert (status, body["error"]) == (503, "unavailable"), fault
        assert not absorbed, fault
        status, body = _post(handler, request)
        assert status == 202, fault
        queued += _drain(sqs, queue_url)

        # THEN after the retry every event is enqueued, each copy the same event (received again)
        by_id: dict[str, list[dict[str, Any]]] = {}
        for row in queued:
            by_id.setdefault(row["event_id"], []).append(_without_receipt(row))
        tally.lost += len(set(expected) - set(by_id))
        tally.doubled += sum(
            1 for event_id, copies in by_id.items() if any(c != expected[event_id] for c in copies)
        )
        assert set(by_id) == set(expected), fault
        assert all(copy_ == expected[event_id] for event_id, copies in by_id.items() for copy_ in copies), (
            fault
        )
        assert set(_quarantined(s3)) == set(quarantined)

    tally.record(record_property)
    assert (tally.lost, tally.doubled) == (0, 0)
