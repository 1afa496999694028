"""Rows to typed Parquet: schema, partitions, determinism, whole-batch writes, per-partition failures,
and the partial-batch contract of the SQS processor (``batchItemFailures``)."""

from __future__ import annotations

import copy
import io
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from minidrama.lake import LocalStorage
from minidrama.queue import encode_row, pack_messages
from minidrama.schema import AMOUNT_SCALE, EVENT_COLUMNS
from minidrama.writer import (
    EVENTS_SCHEMA,
    DecodedMessage,
    Partition,
    PartitionBatchProcessor,
    decode_record,
    group_by_partition,
    partition_of,
    rows_to_table,
    table_to_parquet,
    write_batch,
    write_events,
)
from tests.conftest import load_event
from tests.rows import make_order, make_row


def _read(storage: LocalStorage, key: str) -> list[dict[str, Any]]:
    return pq.read_table(storage.path(key)).to_pylist()


def test_the_schema_has_the_typed_columns_of_the_contract() -> None:
    assert EVENTS_SCHEMA.names == [name for name, _kind in EVENT_COLUMNS]
    assert EVENTS_SCHEMA.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert EVENTS_SCHEMA.field("amount").type == pa.decimal128(38, AMOUNT_SCALE)
    assert EVENTS_SCHEMA.field("launch_ms").type == pa.int64()
    assert EVENTS_SCHEMA.field("success").type == pa.bool_()
    assert EVENTS_SCHEMA.field("properties").type == pa.string()


@pytest.mark.parametrize(
    ("event_time", "expected"),
    [
        (datetime(2026, 11, 28, 0, 0, tzinfo=UTC), (date(2026, 11, 28), 0)),
        (datetime(2026, 11, 28, 23, 59, 59, 999_999, tzinfo=UTC), (date(2026, 11, 28), 23)),
        # partitions are by UTC time, whatever offset the event was sent with
        (datetime(2026, 11, 28, 7, 30, tzinfo=timezone(timedelta(hours=8))), (date(2026, 11, 27), 23)),
        (datetime(2026, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5))), (date(2027, 1, 1), 1)),
    ],
)
def test_partition_is_the_utc_date_and_hour_of_event_time(
    event_time: datetime, expected: tuple[date, int]
) -> None:
    assert partition_of("a", event_time) == Partition("a", *expected)


def test_rows_group_by_hour_in_partition_order() -> None:
    rows = [
        make_row(n, event_time=datetime(2026, 11, 28, hour, tzinfo=UTC))
        for n, hour in enumerate([5, 3, 5, 4])
    ]
    groups = group_by_partition("a", rows)
    assert [partition.hour for partition in groups] == [3, 4, 5]
    assert [row["event_id"] for row in groups[Partition("a", date(2026, 11, 28), 5)]] == [
        "evt-000000",
        "evt-000002",
    ]


def test_the_table_keeps_values_exact_and_typed() -> None:
    # GIVEN an order with a 6-decimal amount and a launch
    rows = [make_order(1, amount=Decimal("123456789.123456")), make_row(0)]
    # WHEN they become a table
    table = rows_to_table(rows)
    # THEN the values come back equal (sorted by event time), money exact
    assert table.schema == EVENTS_SCHEMA
    assert table.to_pylist() == [rows[1], rows[0]]


def test_parquet_files_are_zstd_compressed() -> None:
    data = table_to_parquet(rows_to_table([make_row(n) for n in range(10)]))
    metadata = pq.ParquetFile(io.BytesIO(data)).metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"


def test_one_file_per_partition_at_the_lake_layout(lake: LocalStorage) -> None:
    # GIVEN rows in two hours of one day and one hour of the next
    times = [datetime(2026, 11, 28, 10, tzinfo=UTC), datetime(2026, 11, 28, 11, tzinfo=UTC)] * 3
    times.append(datetime(2026, 11, 29, 0, 5, tzinfo=UTC))
    rows = [make_row(n, event_time=moment) for n, moment in enumerate(times)]
    # WHEN written
    keys = write_events(lake, "app-1", rows)
    # THEN one file per partition, Hive style, holding exactly its rows
    prefixes = [key.rsplit("/", 1)[0] for key in keys]
    assert prefixes == [
        "events/app_id=app-1/dt=2026-11-28/hour=10",
        "events/app_id=app-1/dt=2026-11-28/hour=11",
        "events/app_id=app-1/dt=2026-11-29/hour=00",
    ]
    assert [len(_read(lake, key)) for key in keys] == [3, 3, 1]
    assert sorted((row for key in keys for row in _read(lake, key)), key=lambda row: row["event_id"]) == rows


def test_the_writer_is_deterministic(lake: LocalStorage) -> None:
    # GIVEN the same rows in two different orders
    rows = [make_row(n) for n in range(50)]
    # WHEN written twice
    first = write_events(lake, "app-1", rows)
    second = write_events(lake, "app-1", list(reversed(rows)))
    # THEN the same file: a redelivered batch overwrites instead of adding a copy
    assert first == second
    assert len(lake.list("events/")) == 1


def test_the_same_events_received_twice_are_stored_twice(lake: LocalStorage) -> None:
    rows = [make_row(n) for n in range(5)]
    later = [dict(row, received_at=row["received_at"] + timedelta(seconds=1)) for row in rows]
    write_events(lake, "app-1", rows)
    write_events(lake, "app-1", later)
    assert len(lake.list("events/")) == 2  # readers dedupe by event_id


class FailingHour(LocalStorage):
    """A lake whose writes into one hour partition fail (none when ``hour`` is None)."""

    def __init__(self, root: Any, hour: int | None) -> None:
        super().__init__(root)
        self.hour = hour

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        if self.hour is not None and f"/hour={self.hour:02d}/" in key:
            raise OSError("disk full")
        super().put_bytes(key, data, content_type)


def test_a_batch_is_grouped_as_a_whole_and_a_failed_partition_fails_its_messages(tmp_path: Any) -> None:
    # GIVEN three messages: m1 and m2 both have rows in hour 10, m2 and m3 in hour 11, m3 alone in 12
    def at(hour: int, n: int) -> dict[str, Any]:
        return make_row(n, event_time=datetime(2026, 11, 28, hour, tzinfo=UTC))

    messages = [
        DecodedMessage("m1", "app-1", [at(10, 1), at(10, 2)]),
        DecodedMessage("m2", "app-1", [at(10, 3), at(11, 4)]),
        DecodedMessage("m3", "app-1", [at(11, 5), at(12, 6)]),
    ]
    storage = FailingHour(tmp_path / "lake", hour=11)
    # WHEN the batch is written and hour 11 fails
    outcome = write_batch(storage, messages)
    # THEN hours 10 and 12 have one file each, and the contributors to hour 11 are failed
    assert [key.split("/")[3] for key in outcome.keys] == ["hour=10", "hour=12"]
    assert set(outcome.failed) == {"m2", "m3"}
    assert isinstance(outcome.failed["m2"], OSError)
    assert outcome.rows_written == 4


def test_messages_of_several_apps_go_to_their_own_partitions(lake: LocalStorage) -> None:
    messages = [DecodedMessage("m1", "app-1", [make_row(1)]), DecodedMessage("m2", "app-2", [make_row(2)])]
    outcome = write_batch(lake, messages)
    assert [key.split("/")[1] for key in outcome.keys] == ["app_id=app-1", "app_id=app-2"]
    assert not outcome.failed


# --- the partial-batch contract of the SQS processor --------------------------------------------

POISON = "poison"  # a message body that is not an events message


def _sqs_event(messages: list[str | list[int]]) -> dict[str, Any]:
    """An SQS trigger: message ``m<i>`` is POISON or holds one event in each of the given hours."""
    template = load_event("writer_sqs_batch")["Records"][0]
    records = []
    for index, content in enumerate(messages):
        if content == POISON:
            body = "{not an events message"
        else:
            rows = [
                make_row(index * 100 + n, event_time=datetime(2026, 11, 28, hour, 30, tzinfo=UTC))
                for n, hour in enumerate(content)
            ]
            (packed,) = pack_messages("app-1", [encode_row(row) for row in rows])
            body = packed.decode()
        records.append({**copy.deepcopy(template), "messageId": f"m{index}", "body": body})
    return {"Records": records}


def _stored_event_ids(storage: LocalStorage) -> set[str]:
    return {row["event_id"] for info in storage.list("events/") for row in _read(storage, info.key)}


@pytest.mark.parametrize(
    ("messages", "failing_hour", "reported"),
    [
        ([[10], [11, 12]], None, []),
        ([[10], POISON, [11]], None, ["m1"]),
        # m1 has rows in the failing hour 11 and in hour 10: it comes back whole
        ([[10], [10, 11], [12]], 11, ["m1"]),
        ([[11], [10], [11, 12]], 11, ["m0", "m2"]),
        ([POISON, [10, 11], [12], POISON], 11, ["m0", "m1", "m3"]),
    ],
    ids=["all stored", "poison alone", "a failed partition", "two contributors", "poison and partition"],
)
def test_batch_item_failures_name_exactly_the_messages_not_stored(
    tmp_path: Any, messages: list[str | list[int]], failing_hour: int | None, reported: list[str]
) -> None:
    # GIVEN a batch of messages, a lake whose writes into one hour may fail, the writer's processor
    storage = FailingHour(tmp_path / "lake", hour=failing_hour)
    processor = PartitionBatchProcessor(storage)
    event = _sqs_event(messages)

    # WHEN Powertools processes the batch as the writer function does
    response = process_partial_response(event=event, record_handler=decode_record, processor=processor)

    # THEN batchItemFailures lists each failed message once, and no other
    identifiers = [item["itemIdentifier"] for item in response["batchItemFailures"]]
    assert sorted(identifiers) == reported
    # AND every message not listed is stored in full (SQS deletes it: nothing acknowledged is lost)
    acknowledged = [SQSRecord(r) for r in event["Records"] if r["messageId"] not in reported]
    acknowledged_ids = {row["event_id"] for record in acknowledged for row in decode_record(record).rows}
    assert acknowledged_ids <= _stored_event_ids(storage)


@pytest.mark.parametrize(
    ("messages", "failing_hour"),
    [([POISON, POISON], None), ([[11], [11]], 11), ([POISON, [11]], 11)],
    ids=["all poison", "all in a failed partition", "poison and a failed partition"],
)
def test_a_batch_whose_every_message_failed_fails_the_invocation(
    tmp_path: Any, messages: list[str | list[int]], failing_hour: int | None
) -> None:
    # GIVEN a batch in which no message can be stored
    storage = FailingHour(tmp_path / "lake", hour=failing_hour)
    processor = PartitionBatchProcessor(storage)

    # WHEN it is processed THEN Powertools raises (its documented default for an entire-batch
    # failure): the invocation errors, the Errors metric counts it and SQS retries every message
    with pytest.raises(BatchProcessingError, match="All records failed processing"):
        process_partial_response(
            event=_sqs_event(messages), record_handler=decode_record, processor=processor
        )
    assert _stored_event_ids(storage) == set()


def test_a_reused_processor_starts_every_batch_afresh(tmp_path: Any) -> None:
    # GIVEN the module-level processor of a warm Lambda that just reported a failed message
    storage = FailingHour(tmp_path / "lake", hour=11)
    processor = PartitionBatchProcessor(storage)
    first = process_partial_response(
        event=_sqs_event([[10], [11]]), record_handler=decode_record, processor=processor
    )
    assert first == {"batchItemFailures": [{"itemIdentifier": "m1"}]}

    # WHEN the next invocation's batch is stored in full
    second = process_partial_response(
        event=_sqs_event([[12], [13]]), record_handler=decode_record, processor=processor
    )

    # THEN nothing of the first batch is reported again, and the outcome is the new batch's
    assert second == {"batchItemFailures": []}
    assert processor.outcome.rows_written == 2 and not processor.outcome.failed
