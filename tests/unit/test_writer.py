"""Rows to typed Parquet: schema, partitions, determinism, whole-batch writes, per-partition failures."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from minidrama.lake import LocalStorage
from minidrama.schema import AMOUNT_SCALE, EVENT_COLUMNS
from minidrama.writer import (
    EVENTS_SCHEMA,
    DecodedMessage,
    Partition,
    group_by_partition,
    partition_of,
    rows_to_table,
    table_to_parquet,
    write_batch,
    write_events,
)
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
    """A lake whose writes into one hour partition fail."""

    def __init__(self, root: Any, hour: int) -> None:
        super().__init__(root)
        self.hour = hour

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        if f"/hour={self.hour:02d}/" in key:
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
