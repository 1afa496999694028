"""The data health section's pure parts: Parquet row counts from the footer, rejection reasons,
and which days may still change."""

from __future__ import annotations

import io
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from minidrama.lake import LocalStorage
from minidrama.report.health import parquet_row_count, provisional_days, rejection_reason, stored_row_count

DAY = date(2026, 11, 30)


def _parquet(rows: int, row_group_size: int | None = None, **options) -> bytes:
    table = pa.table(
        {
            "event_id": [f"e-{index}" for index in range(rows)],
            "launch_ms": pa.array([index if index % 3 else None for index in range(rows)], pa.int64()),
            "success": [index % 2 == 0 for index in range(rows)],
            "amount": pa.array([None] * rows, pa.decimal128(38, 6)),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=row_group_size, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("rows", "row_group_size", "options"),
    [
        (0, None, {}),
        (1, None, {}),
        (17, 5, {}),  # several row groups: num_rows is the file's, not a group's
        (3_000, 1_000, {"compression": "zstd"}),
        (200_000, 65_536, {"write_statistics": False}),  # a count that takes three varint bytes
        (40, None, {"version": "1.0", "use_dictionary": False}),
    ],
)
def test_the_row_count_is_the_footers(rows, row_group_size, options, tmp_path):
    data = _parquet(rows, row_group_size, **options)
    assert parquet_row_count(data) == pq.ParquetFile(io.BytesIO(data)).metadata.num_rows == rows
    # AND read from the stored file's end alone, the same
    lake = _CountingLake(tmp_path / "lake")
    lake.put_bytes("events/file.parquet", data)
    assert stored_row_count(lake, "events/file.parquet") == rows
    assert lake.whole_reads == 0


def test_a_footer_longer_than_the_first_ranged_read_is_read_with_a_second(tmp_path):
    # GIVEN a file of 3,000 row groups: its footer is several hundred KiB
    data = _parquet(3_000, 1)
    footer = int.from_bytes(data[-8:-4], "little")
    assert footer > 64 * 1024
    lake = _CountingLake(tmp_path / "lake")
    lake.put_bytes("events/big.parquet", data)
    # THEN its rows are counted from two reads of its end, never the whole file
    assert stored_row_count(lake, "events/big.parquet") == 3_000
    assert lake.tail_reads == [64 * 1024, footer + 12] and lake.whole_reads == 0


class _CountingLake(LocalStorage):
    def __init__(self, root):
        super().__init__(root)
        self.tail_reads: list[int] = []
        self.whole_reads = 0

    def get_bytes(self, key):
        self.whole_reads += 1
        return super().get_bytes(key)

    def get_tail(self, key, size):
        self.tail_reads.append(size)
        return super().get_tail(key, size)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a Parquet file"),
        (b"PAR1PAR1", "not a Parquet file"),
        (b'{"event_id": "e-1"}\n', "not a Parquet file"),
        (b"PAR1" + b"\x00" * 8 + (10_000).to_bytes(4, "little") + b"PAR1", "does not fit"),
        (b"PAR1" + b"\x15" + (1).to_bytes(4, "little") + b"PAR1", "ends early"),
    ],
)
def test_bytes_that_are_not_a_parquet_file_are_refused_by_name(data, message):
    with pytest.raises(ValueError, match=message):
        parquet_row_count(data)


def test_a_truncated_footer_is_refused():
    data = _parquet(10)
    length = int.from_bytes(data[-8:-4], "little")
    cut = (
        data[: -8 - length]
        + data[-8 - length : -8 - length // 2]
        + (length // 2).to_bytes(4, "little")
        + b"PAR1"
    )
    with pytest.raises(ValueError, match="Parquet footer"):
        parquet_row_count(cut)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("user_id: required", "user_id: required"),
        ("session_id: required, got null", "session_id: required"),
        (
            "currency: must be an ISO 4217 currency code, got 'ZZZ'",
            "currency: must be an ISO 4217 currency code",
        ),
        ("user_id: must be 1 to 128 characters long, got 0", "user_id: must be 1 to 128 characters long"),
        (
            "event_time: must not be more than 24 h after receipt (2026-11-30T18:43:44.153Z), "
            "got '2026-12-02T00:00:00Z'",
            "event_time: must not be more than 24 h after receipt",
        ),
        (
            "currency: no conversion rate from XYZ to USD configured",
            "currency: no conversion rate from XYZ to USD configured",
        ),
    ],
)
def test_a_reason_is_the_rule_without_the_value_that_broke_it(error, reason):
    assert rejection_reason(error) == reason


@pytest.mark.parametrize(
    ("recompute_days", "expected"),
    [
        (1, []),  # computed once, the morning after: nothing changes later
        (2, [DAY]),
        (3, [date(2026, 11, 29), DAY]),  # the default: the run after the report recomputes both
        (5, [date(2026, 11, 27), date(2026, 11, 28), date(2026, 11, 29), DAY]),
    ],
)
def test_the_days_that_may_still_change_are_those_later_runs_recompute(recompute_days, expected):
    assert provisional_days(DAY, recompute_days) == expected
