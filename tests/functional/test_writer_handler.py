"""The writer function on moto S3: SQS batches to partitioned Parquet, partial failures, poison messages."""

from __future__ import annotations

import copy
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto import mock_aws

from minidrama.lake import S3Storage
from minidrama.queue import encode_row, pack_messages
from tests.conftest import LambdaContext, load_event, load_handler
from tests.rows import make_order, make_row

BUCKET = "minidrama-lake"


@dataclass
class Stack:
    handler: ModuleType
    storage: S3Storage

    def call(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.handler.lambda_handler(event, LambdaContext())

    def files(self) -> dict[str, list[dict[str, Any]]]:
        return {
            info.key: pq.read_table(io.BytesIO(self.storage.get_bytes(info.key))).to_pylist()
            for info in self.storage.list("events/")
        }


@pytest.fixture
def stack(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        monkeypatch.setenv("LAKE_BUCKET", BUCKET)
        yield Stack(load_handler("writer"), S3Storage(s3, BUCKET))


def sqs_event(bodies: list[str | bytes]) -> dict[str, Any]:
    """An SQS trigger holding these message bodies (shaped like the sample batch)."""
    template = load_event("writer_sqs_batch")["Records"][0]
    records = []
    for n, body in enumerate(bodies):
        text = body.decode() if isinstance(body, bytes) else body
        record = copy.deepcopy(template)
        record.update(
            messageId=f"message-{n:03d}",
            receiptHandle=f"handle-{n}",
            body=text,
            md5OfBody=hashlib.md5(text.encode()).hexdigest(),
        )
        records.append(record)
    return {"Records": records}


def at_hour(hour: int, n: int) -> dict[str, Any]:
    return make_row(n, event_time=datetime(2026, 11, 28, hour, 30, tzinfo=UTC))


def test_the_sample_batch_becomes_one_file_per_partition(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN the sample SQS batch arrives (3 events: two in 10:00 UTC, one in 03:00 UTC)
    response = stack.call(load_event("writer_sqs_batch"))
    # THEN nothing failed, and each hour partition has one file with its events, typed
    assert response == {"batchItemFailures": []}
    files = stack.files()
    assert sorted(key.rsplit("/", 1)[0] for key in files) == [
        "events/app_id=sample-app/dt=2026-11-28/hour=03",
        "events/app_id=sample-app/dt=2026-11-28/hour=10",
    ]
    rows = {row["event_id"]: row for file_rows in files.values() for row in file_rows}
    assert sorted(rows) == ["launch-0001", "order-0001", "visit-0001"]
    assert str(rows["order-0001"]["amount"]) == "4.990000"
    assert rows["launch-0001"]["event_time"] == datetime(2026, 11, 28, 10, 15, 0, 123_000, tzinfo=UTC)
    assert rows["visit-0001"]["properties"] == '{"series":"The CEO\'s Secret Twin"}'
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert metrics[-1]["WrittenEvents"] == [3.0] and metrics[-1]["WrittenFiles"] == [2.0]


def test_many_messages_in_one_partition_make_one_file(stack: Stack) -> None:
    # GIVEN 40 messages of 25 events each, all in the same hour
    bodies = [
        body
        for start in range(0, 1_000, 25)
        for body in pack_messages("app-1", [encode_row(at_hour(10, n)) for n in range(start, start + 25)])
    ]
    # WHEN they arrive as one batch
    response = stack.call(sqs_event(bodies))
    # THEN one file holds all 1,000 events
    assert response == {"batchItemFailures": []}
    (rows,) = stack.files().values()
    assert len(rows) == 1_000 and len({row["event_id"] for row in rows}) == 1_000


def test_a_poison_message_fails_alone(stack: Stack) -> None:
    # GIVEN a batch with a good message, an undecodable one and another good one
    good = pack_messages("app-1", [encode_row(at_hour(10, 1))])[0]
    other = pack_messages("app-1", [encode_row(at_hour(11, 2))])[0]
    response = stack.call(sqs_event([good, "{definitely not an events message", other]))
    # THEN only the poison message is reported (SQS returns it, then moves it to the DLQ)
    assert response == {"batchItemFailures": [{"itemIdentifier": "message-001"}]}
    assert len(stack.files()) == 2


def test_a_failed_partition_reports_every_message_that_contributed(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN messages: m0 only hour 10, m1 hours 10 and 11, m2 only hour 12; S3 refuses hour 11
    bodies = [
        pack_messages("app-1", [encode_row(row) for row in rows])[0]
        for rows in ([at_hour(10, 0)], [at_hour(10, 1), at_hour(11, 2)], [at_hour(12, 3)])
    ]
    storage = stack.handler.processor.storage
    original = storage.put_bytes

    def put_bytes(key: str, data: bytes, content_type: str | None = None) -> None:
        if "/hour=11/" in key:
            raise OSError("S3 unavailable")
        original(key, data, content_type)

    monkeypatch.setattr(storage, "put_bytes", put_bytes)
    # WHEN the batch is processed
    response = stack.call(sqs_event(bodies))
    # THEN m1 comes back (its hour-10 rows are also written: the retry's copy is deduplicated on read)
    assert response == {"batchItemFailures": [{"itemIdentifier": "message-001"}]}
    assert sorted(key.split("/")[3] for key in stack.files()) == ["hour=10", "hour=12"]


def test_a_batch_that_fails_entirely_fails_the_invocation(stack: Stack) -> None:
    with pytest.raises(BatchProcessingError):
        stack.call(sqs_event(["poison one", "poison two"]))
    assert stack.files() == {}


def test_a_redelivered_batch_does_not_add_files(stack: Stack) -> None:
    # GIVEN a batch processed once (e.g. the invocation timed out after writing)
    event = sqs_event([pack_messages("app-1", [encode_row(make_order(n)) for n in range(10)])[0]])
    stack.call(event)
    first = stack.files()
    # WHEN SQS delivers the same batch again
    stack.call(event)
    # THEN the same files hold the same rows
    assert stack.files() == first


def test_a_large_batch_with_several_apps_and_days(stack: Stack) -> None:
    bodies = [
        body
        for app_id in ("app-1", "app-2")
        for body in pack_messages(
            app_id,
            [
                encode_row(make_row(n, event_time=datetime(2026, 11, 27 + n % 2, n % 24, tzinfo=UTC)))
                for n in range(2_000)
            ],
        )
    ]
    response = stack.call(sqs_event(bodies))
    assert response == {"batchItemFailures": []}
    files = stack.files()
    assert len(files) == 2 * 24  # 2 apps x (12 hours on the 27th + 12 on the 28th)
    assert sum(len(rows) for rows in files.values()) == 4_000
