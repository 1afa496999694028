"""Data health of a report's day: how many events the lake accepted and rejected, and why.

What :func:`read_data_health` counts, for day D in the app's time zone (the UTC instants
[start, end) of :func:`minidrama.metrics.window.day_window`):

- **accepted**: the rows of the events Parquet files (those a reader reads, see
  :func:`minidrama.metrics.compaction.readable_files`) of the UTC hour partitions that cover D,
  i.e. accepted events *by event time*, as the lake holds them: custom events included, and a
  re-sent copy of an event counted until compaction keeps one (the metrics job compacts the days
  it recomputes, just before the report). In a zone with a :30 offset the two hours that straddle
  midnight count whole. Rows are read from each file's Parquet footer (the report function ships
  no pyarrow), fetched alone by a ranged read of the file's end: a month's data health reads a
  few KiB per file, not the files.
- **rejected**: the quarantine lines whose ``received_at`` falls in D, i.e. rejected events *by
  time of receipt* (a rejected event's own time may be what is wrong with it), read from the
  quarantine partitions (UTC receipt dates) that overlap D.
- **reasons**: each rejected event's errors, grouped by the rule broken (the text before
  ``", got <value>"``), most frequent first; an event that broke two rules counts under both.

Nothing here raises for damaged data: a file or a line that cannot be read is counted in
``problems``, and the day's accepted count becomes unknown (None) when an events file is unreadable.
Errors of the storage itself (S3 down) propagate.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from minidrama.lake import Storage, events_partition
from minidrama.metrics.compaction import readable_files
from minidrama.metrics.window import DayWindow, day_window

__all__ = [
    "DEFAULT_RECOMPUTE_DAYS",
    "RejectionReason",
    "DataHealth",
    "read_data_health",
    "parquet_row_count",
    "rejection_reason",
    "provisional_days",
]

DEFAULT_RECOMPUTE_DAYS = 3  # the metrics job's RECOMPUTE_DAYS default
TOP_REASONS = 5


@dataclass(frozen=True)
class RejectionReason:
    """One rule that rejected events broke (``"user_id: required"``) and how many events broke it."""

    reason: str
    events: int


@dataclass(frozen=True)
class DataHealth:
    """The day's accepted and rejected events; see the module docstring for what is counted."""

    day: date
    timezone: str
    accepted: int | None
    rejected: int
    reasons: tuple[RejectionReason, ...] = ()
    more_reasons: int = 0  # distinct reasons beyond those listed
    recompute_days: int = DEFAULT_RECOMPUTE_DAYS
    problems: tuple[str, ...] = field(default=())

    @property
    def rejected_share(self) -> float | None:
        """Rejected of all events (accepted + rejected), None when that is unknown or zero."""
        if self.accepted is None or not self.accepted + self.rejected:
            return None
        return self.rejected / (self.accepted + self.rejected)

    @property
    def provisional_days(self) -> list[date]:
        return provisional_days(self.day, self.recompute_days)


def provisional_days(day: date, recompute_days: int) -> list[date]:
    """The days up to ``day`` whose figures later metrics runs will still recompute, oldest first.

    The metrics job recomputes the last ``recompute_days`` complete days on each run. The report of
    D follows the run of D + 1, which computed D - N + 1 … D for the last time for D - N + 1; the
    runs of D + 2 … D + N still recompute D - N + 2 … D. So with N = 3, D - 1 and D may change.
    """
    return [day - timedelta(days=offset) for offset in range(recompute_days - 2, -1, -1)]


def read_data_health(
    storage: Storage,
    app_id: str,
    day: date,
    *,
    timezone: str = "UTC",
    recompute_days: int = DEFAULT_RECOMPUTE_DAYS,
    top: int = TOP_REASONS,
    first: date | None = None,
) -> DataHealth:
    """Accepted and rejected events of ``app_id`` on ``day`` (a calendar day in ``timezone``), or
    on the days ``first`` … ``day`` (a weekly or monthly report's).

    ``recompute_days`` is the deployment's ``RECOMPUTE_DAYS``: it says which days may still change.
    """
    window = _span_window(first or day, day, timezone)
    problems: list[str] = []
    accepted: int | None = 0
    for utc_date, hour in window.hours:
        listing = storage.list(events_partition(app_id, utc_date, hour))
        for info in readable_files(storage, listing):
            try:
                rows = stored_row_count(storage, info.key)
            except ValueError as error:
                problems.append(f"{info.key}: {error}")
                accepted = None
                continue
            if accepted is not None:
                accepted += rows
    rejected = 0
    reasons: Counter[str] = Counter()
    last_receipt = (window.end - timedelta(microseconds=1)).date()
    receipt_dates = [
        window.start.date() + timedelta(days=offset)
        for offset in range((last_receipt - window.start.date()).days + 1)
    ]
    for receipt_date in receipt_dates:
        for info in storage.list(_quarantine_partition(app_id, receipt_date)):
            if not info.key.endswith(".jsonl"):
                continue
            for number, line in enumerate(
                storage.get_bytes(info.key).decode("utf-8", "replace").splitlines()
            ):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    received_at = datetime.fromisoformat(record["received_at"])
                    errors = [str(error) for error in record["errors"]]
                except (ValueError, KeyError, TypeError) as error:
                    problems.append(f"{info.key} line {number + 1}: not a quarantine record ({error})")
                    continue
                if window.start <= received_at < window.end:
                    rejected += 1
                    reasons.update({rejection_reason(error) for error in errors})
    ranked = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return DataHealth(
        day=day,
        timezone=timezone,
        accepted=accepted,
        rejected=rejected,
        reasons=tuple(RejectionReason(reason, count) for reason, count in ranked[:top]),
        more_reasons=max(len(ranked) - top, 0),
        recompute_days=recompute_days,
        problems=tuple(problems),
    )


def _span_window(first: date, last: date, timezone: str) -> DayWindow:
    """The UTC window of the days ``first`` … ``last`` in ``timezone``."""
    return replace(day_window(last, timezone), start=day_window(first, timezone).start)


def _quarantine_partition(app_id: str, received: date) -> str:
    # The prefix of minidrama.lake.quarantine_key's files of one UTC receipt date.
    return f"quarantine/app_id={app_id}/dt={received.isoformat()}/"


_RECEIPT_TIME = re.compile(r" \(\d{4}-\d{2}-\d{2}T[^)]*\)")


def rejection_reason(error: str) -> str:
    """The rule an error names, without the value that broke it.

    ``"currency: must be an ISO 4217 currency code, got 'ZZZ'"`` → ``"currency: must be an ISO 4217
    currency code"``; the receipt time of the 24-hour rule is left out as well.
    """
    reason = error.split(", got ", 1)[0]
    return _RECEIPT_TIME.sub("", reason).strip()


# --- Parquet row counts, from the footer -------------------------------------------------------

_MAGIC = b"PAR1"


def parquet_row_count(data: bytes) -> int:
    """``num_rows`` of a Parquet file's footer (its ``FileMetaData``, Thrift compact encoding).

    Raises ValueError for bytes that are not a Parquet file with a readable plain footer.
    """
    if len(data) < 12 or data[:4] != _MAGIC or data[-4:] != _MAGIC:
        raise ValueError("not a Parquet file (no PAR1 at both ends)")
    return _footer_rows(data, whole=True)


def stored_row_count(storage: Storage, key: str) -> int:
    """``num_rows`` of a stored Parquet file, as :func:`parquet_row_count` reads it, from its end
    alone (one ranged read of 64 KiB; a second when its footer is longer)."""
    tail = storage.get_tail(key, _TAIL_BYTES)
    whole = len(tail) < _TAIL_BYTES
    if len(tail) < 12 or tail[-4:] != _MAGIC or (whole and tail[:4] != _MAGIC):
        raise ValueError("not a Parquet file (no PAR1 at both ends)")
    length = int.from_bytes(tail[-8:-4], "little")
    if not whole and length + 12 > len(tail):
        tail = storage.get_tail(key, length + 12)
        whole = len(tail) < length + 12
    return _footer_rows(tail, whole=whole)


def _footer_rows(data: bytes, *, whole: bool) -> int:
    """The footer's ``num_rows``; ``data`` ends with the file's footer, its length and PAR1, and
    is the ``whole`` file or its last bytes."""
    length = int.from_bytes(data[-8:-4], "little")
    start = len(data) - 8 - length
    if start < (4 if whole else 0):
        raise ValueError(f"Parquet footer length {length} does not fit the file")
    reader = _CompactReader(data, start, len(data) - 8)
    for field_id, kind in reader.fields():
        if field_id == 3 and kind == _I64:  # FileMetaData.num_rows
            rows = reader.zigzag()
            if rows < 0:
                raise ValueError(f"Parquet footer says {rows} rows")
            return rows
        reader.skip(kind)
    raise ValueError("Parquet footer has no num_rows")


# Thrift compact protocol types
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)
_MAX_DEPTH = 32
_TAIL_BYTES = 64 * 1024  # a footer of the lake's files is a few KiB: one read takes it whole


class _CompactReader:
    """Just enough of the Thrift compact protocol to walk a struct and skip what it doesn't need."""

    def __init__(self, data: bytes, position: int, end: int) -> None:
        self.data, self.position, self.end = data, position, end

    def byte(self) -> int:
        if self.position >= self.end:
            raise ValueError("Parquet footer ends early")
        value = self.data[self.position]
        self.position += 1
        return value

    def varint(self) -> int:
        result = shift = 0
        while True:
            value = self.byte()
            result |= (value & 0x7F) << shift
            if not value & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ValueError("Parquet footer has a malformed integer")

    def zigzag(self) -> int:
        value = self.varint()
        return (value >> 1) ^ -(value & 1)

    def fields(self) -> Iterator[tuple[int, int]]:
        """(field id, type) of each field of the struct at the position, up to its stop byte."""
        last = 0
        while True:
            header = self.byte()
            if header == 0:
                return
            delta, kind = header >> 4, header & 0x0F
            last = last + delta if delta else self.zigzag()
            yield last, kind

    def skip(self, kind: int, depth: int = 0, *, in_collection: bool = False) -> None:
        if depth > _MAX_DEPTH:
            raise ValueError("Parquet footer nests too deep")
        if kind in (_TRUE, _FALSE):
            if in_collection:  # a collection's booleans take a byte each; a field's live in its type
                self.byte()
        elif kind == _BYTE:
            self.byte()
        elif kind in (_I16, _I32, _I64):
            self.varint()
        elif kind == _DOUBLE:
            self._advance(8)
        elif kind == _BINARY:
            self._advance(self.varint())
        elif kind in (_LIST, _SET):
            header = self.byte()
            size, element = header >> 4, header & 0x0F
            if size == 15:
                size = self.varint()
            for _ in range(size):
                self.skip(element, depth + 1, in_collection=True)
        elif kind == _MAP:
            size = self.varint()
            if size:
                types = self.byte()
                for _ in range(size):
                    self.skip(types >> 4, depth + 1, in_collection=True)
                    self.skip(types & 0x0F, depth + 1, in_collection=True)
        elif kind == _STRUCT:
            for _field_id, field_kind in self.fields():
                self.skip(field_kind, depth + 1)
        else:
            raise ValueError(f"Parquet footer has an unknown Thrift type {kind}")

    def _advance(self, count: int) -> None:
        if self.position + count > self.end:
            raise ValueError("Parquet footer ends early")
        self.position += count
