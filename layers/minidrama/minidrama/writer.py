"""Accepted rows to Parquet: one zstd file per (app, UTC date, hour) partition per batch.

The writer is deterministic: the same rows give the same table (sorted by event time, then
event id) and the same bytes, and a file is named after a hash of its bytes. So a batch
that is delivered again with the same content overwrites its files instead of adding copies;
other re-deliveries add rows that the readers deduplicate by ``event_id``.

The SQS side (used by the writer function) decodes every message of a batch first, then
groups the WHOLE batch by partition, so a batch of many small messages still gives one file
per partition. When a partition cannot be written, every message that contributed rows to
it is reported failed and comes back; an undecodable message is reported failed alone, so
after the queue's ``maxReceiveCount`` it moves to the dead-letter queue and never blocks.
"""

from __future__ import annotations

import hashlib
import io
import logging
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from aws_lambda_powertools.utilities.batch import BasePartialBatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from minidrama.lake import Storage, events_key
from minidrama.queue import decode_message
from minidrama.schema import AMOUNT_SCALE, EVENT_COLUMNS

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

__all__ = [
    "EVENTS_SCHEMA",
    "PARQUET_CONTENT_TYPE",
    "Partition",
    "DecodedMessage",
    "BatchOutcome",
    "partition_of",
    "group_by_partition",
    "rows_to_table",
    "encode_table",
    "write_table",
    "table_to_parquet",
    "PartitionFiles",
    "write_partition",
    "write_events",
    "ParquetSink",
    "decode_record",
    "write_batch",
    "PartitionBatchProcessor",
]

# The Arrow type of each logical column type of minidrama.schema (the stored facts add "date").
ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "bool": pa.bool_(),
    "int64": pa.int64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "decimal": pa.decimal128(38, AMOUNT_SCALE),
}

EVENTS_SCHEMA = pa.schema([pa.field(name, ARROW_TYPES[kind], nullable=True) for name, kind in EVENT_COLUMNS])
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"


class Partition(NamedTuple):
    """One hour partition of one app (UTC date and hour of ``event_time``)."""

    app_id: str
    dt: date
    hour: int


def partition_of(app_id: str, event_time: datetime) -> Partition:
    utc = event_time.astimezone(UTC)
    return Partition(app_id, utc.date(), utc.hour)


def group_by_partition(app_id: str, rows: list[dict[str, Any]]) -> dict[Partition, list[dict[str, Any]]]:
    """Rows by partition, partitions in order."""
    groups: dict[Partition, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[partition_of(app_id, row["event_time"])].append(row)
    return dict(sorted(groups.items()))


def _sort_key(row: dict[str, Any]) -> tuple[datetime, str, datetime]:
    return row["event_time"], row["event_id"], row["received_at"]


def rows_to_table(rows: list[dict[str, Any]], *, sort: bool = True) -> pa.Table:
    """Rows (the :data:`EVENT_COLUMNS` keys; an absent one is null) as a typed table, sorted by
    event time and id unless ``sort`` is False."""
    ordered = sorted(rows, key=_sort_key) if sort else rows
    columns = {name: [row.get(name) for row in ordered] for name, _kind in EVENT_COLUMNS}
    return pa.Table.from_pydict(columns, schema=EVENTS_SCHEMA)


# Dictionary-encoded: the columns of few distinct values, and user_id (each user's events repeat
# it). Ids unique per row (event, session, order) and free text are not: building a dictionary
# that ends up as large as the column cost a small file a quarter of its encoding time, and gave
# a bigger file (bench/ingest_bench.py's events: 20 % faster for a request's rows, 13 % for an
# hour of a million-event day, 2 % smaller).
DICTIONARY_COLUMNS = (
    "event_name",
    "user_id",
    "os",
    "region",
    "entry_point",
    "device_brand",
    "device_model",
    "tiktok_version",
    "gender",
    "age_group",
    "currency",
    "product_id",
)
assert set(DICTIONARY_COLUMNS) <= {name for name, _kind in EVENT_COLUMNS}, "a column was renamed"


_PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "use_dictionary": list(DICTIONARY_COLUMNS)}


def table_to_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **_PARQUET_OPTIONS)
    return sink.getvalue()


def partition_file_key(partition: Partition, data: bytes) -> str:
    """The key of a partition's Parquet file, named by its content (a rewrite of the same rows is
    the same file)."""
    return events_key(partition.app_id, partition.dt, partition.hour, hashlib.sha256(data).hexdigest()[:32])


def write_partition(storage: Storage, partition: Partition, rows: list[dict[str, Any]]) -> str:
    """Write one partition's rows as one Parquet file; returns its key."""
    data = table_to_parquet(rows_to_table(rows))
    key = partition_file_key(partition, data)
    storage.put_bytes(key, data, PARQUET_CONTENT_TYPE)
    return key


def write_events(storage: Storage, app_id: str, rows: list[dict[str, Any]]) -> list[str]:
    """Write accepted rows of one app, one file per partition; returns the keys written."""
    return [
        write_partition(storage, partition, partition_rows)
        for partition, partition_rows in group_by_partition(app_id, rows).items()
    ]


_THREADED_ROWS = 100_000  # a table this big is written two partitions at a time
_TABLE_ORDER = [("event_time", "ascending"), ("event_id", "ascending"), ("received_at", "ascending")]


def encode_table(app_id: str, table: pa.Table) -> list[tuple[str, bytes]]:
    """A table of accepted rows of one app (:data:`EVENTS_SCHEMA`) as the Parquet files to store:
    one per hour partition, rows sorted as :func:`rows_to_table` sorts them, (key, bytes) each.

    The whole table is sorted once (a stable sort by event time puts each hour's rows together,
    in the order a sort of that hour alone gives) and each partition is a slice of it: one copy
    of the rows, not a filtered copy per hour and then a sorted one. Partitions of a big table
    are encoded two at a time (zstd and Parquet release the GIL)."""
    if table.num_rows == 0:
        return []
    # taking rows out of many chunks (a request's parts; a call's chunks) costs more than
    # joining the chunks first
    ordered = table.combine_chunks().sort_by(_TABLE_ORDER)
    slices = _hour_slices(ordered)

    def encode(part: tuple[datetime, int, int]) -> tuple[str, bytes]:
        hour, offset, length = part
        data = table_to_parquet(ordered.slice(offset, length))
        return partition_file_key(partition_of(app_id, hour), data), data

    if table.num_rows < _THREADED_ROWS:
        return [encode(part) for part in slices]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(encode, slices))


class PartitionFiles:
    """The Parquet files of a stream of accepted rows of one app (``minidrama ingest``'s bulk
    path): one file per hour partition, built while the rows arrive. Each :meth:`add` (a chunk's
    rows, in any order) is sorted and kept per hour; an hour's rows are encoded as a row group of
    its file once :data:`ROW_GROUP_ROWS` are kept, or the largest hour's once
    :data:`KEPT_ROWS` are kept in all; :meth:`close` encodes the rest and returns the files as
    :func:`encode_table` does. So memory holds at most :data:`KEPT_ROWS` rows and the compressed
    files, and most of the encoding is done while later chunks are still being checked. Each row
    group is sorted as :func:`rows_to_table` sorts rows; the file is the row groups in order."""

    ROW_GROUP_ROWS = 131_072
    KEPT_ROWS = 400_000

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self.kept: dict[datetime, list[pa.Table]] = defaultdict(list)
        self.kept_rows: dict[datetime, int] = defaultdict(int)
        self.writers: dict[datetime, tuple[io.BytesIO, pq.ParquetWriter]] = {}
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        ordered = table.combine_chunks().sort_by(_TABLE_ORDER)
        for hour, offset, length in _hour_slices(ordered):
            self.kept[hour].append(ordered.slice(offset, length))
            self.kept_rows[hour] += length
            self.rows += length
            if self.kept_rows[hour] >= self.ROW_GROUP_ROWS:
                self._encode(hour)
        while sum(self.kept_rows.values()) >= self.KEPT_ROWS:
            self._encode(max(self.kept_rows, key=self.kept_rows.__getitem__))

    def _encode(self, hour: datetime) -> None:
        pieces = self.kept.pop(hour)
        del self.kept_rows[hour]
        self._write(hour, pieces)

    def _write(self, hour: datetime, pieces: list[pa.Table]) -> None:
        rows = (
            pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces).combine_chunks().sort_by(_TABLE_ORDER)
        )
        if hour not in self.writers:
            sink = io.BytesIO()
            self.writers[hour] = (sink, pq.ParquetWriter(sink, EVENTS_SCHEMA, **_PARQUET_OPTIONS))
        self.writers[hour][1].write_table(rows, row_group_size=rows.num_rows)

    def close(self) -> list[tuple[str, bytes]]:
        """The files (key, bytes), by hour; the object is then empty, ready for more rows. The
        rows still kept are encoded two hours at a time (nothing else is left to do then)."""
        rest, self.kept, self.kept_rows = self.kept, defaultdict(list), defaultdict(int)
        with ThreadPoolExecutor(max_workers=2) as pool:
            for done in [pool.submit(self._write, hour, pieces) for hour, pieces in rest.items()]:
                done.result()
        files = []
        for hour in sorted(self.writers):
            sink, writer = self.writers[hour]
            writer.close()
            data = sink.getvalue()
            files.append((partition_file_key(partition_of(self.app_id, hour), data), data))
        self.writers, self.rows = {}, 0
        return files


def _hour_slices(ordered: pa.Table) -> list[tuple[datetime, int, int]]:
    """(hour, offset, length) of each hour's rows of a table sorted by event time."""
    counts = pc.value_counts(pc.floor_temporal(ordered.column("event_time"), unit="hour"))
    slices, start = [], 0
    # the hours in ascending order, as the rows are (whatever order value_counts lists them in)
    pairs = zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
    for hour, count in sorted(pairs):
        slices.append((hour, start, count))
        start += count
    return slices


def write_table(storage: Storage, app_id: str, table: pa.Table) -> list[str]:
    """Write :func:`encode_table`'s files; returns their keys."""
    files = encode_table(app_id, table)
    for key, data in files:
        storage.put_bytes(key, data, PARQUET_CONTENT_TYPE)
    return [key for key, _data in files]


class ParquetSink:
    """The local sink: accepted rows go straight to Parquet in the lake (durable once written)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.keys: list[str] = []

    def write(self, app_id: str, rows: list[dict[str, Any]], encoded: list[bytes] | None = None) -> None:
        self.keys.extend(write_events(self.storage, app_id, rows))


# --- the SQS batch side ----------------------------------------------------------------------


@dataclass(frozen=True)
class DecodedMessage:
    message_id: str
    app_id: str
    rows: list[dict[str, Any]]


@dataclass
class BatchOutcome:
    """What one batch write did: the files written and the messages whose rows were not stored."""

    keys: list[str] = field(default_factory=list)
    rows_written: int = 0
    failed: dict[str, BaseException] = field(default_factory=dict)  # message_id -> why


def decode_record(record: SQSRecord) -> DecodedMessage:
    """The record handler: decode one SQS message (raises for a poison message)."""
    app_id, rows = decode_message(record.body)
    return DecodedMessage(record.message_id, app_id, rows)


def write_batch(storage: Storage, messages: list[DecodedMessage]) -> BatchOutcome:
    """Write the rows of all messages, one file per partition across the whole batch."""
    rows_by_partition: dict[Partition, list[dict[str, Any]]] = defaultdict(list)
    contributors: dict[Partition, list[str]] = defaultdict(list)
    for message in messages:
        for partition, rows in group_by_partition(message.app_id, message.rows).items():
            rows_by_partition[partition].extend(rows)
            contributors[partition].append(message.message_id)
    outcome = BatchOutcome()
    for partition in sorted(rows_by_partition):
        rows = rows_by_partition[partition]
        try:
            outcome.keys.append(write_partition(storage, partition, rows))
        except Exception as error:  # any storage or conversion error: the messages come back
            for message_id in contributors[partition]:
                outcome.failed.setdefault(message_id, error)
        else:
            outcome.rows_written += len(rows)
    return outcome


class PartitionBatchProcessor(BasePartialBatchProcessor):
    """A Powertools SQS partial-batch processor that writes the whole batch at once, by partition.

    Built on Powertools' documented hooks only (``_prepare``, ``_process_record``, ``_clean``,
    ``success_handler``, ``failure_handler``): the record handler (:func:`decode_record`) runs per
    message as the batch is processed; as the batch closes, every partition is written and each
    message gets exactly one verdict: success when all its rows are stored, failure when it could
    not be decoded or a partition it has rows in could not be written. Powertools then answers
    ``batchItemFailures`` with exactly the failed messages, and raises ``BatchProcessingError``
    (the invocation fails, SQS retries the whole batch) when every message failed.

    :meth:`process` gives ``("decoded", message, record)`` for a message waiting for the write and
    ``("fail", error, record)`` for one that could not be decoded; the final verdicts are in
    :meth:`response` and :attr:`outcome` once the ``with`` block (or ``process_partial_response``)
    has ended. The processor is reused across invocations, as a Lambda handler's module-level
    processor is: each batch starts from nothing.
    """

    def __init__(self, storage: Storage, logger: logging.Logger | Logger | None = None) -> None:
        # Powertools types the logger as logging.Logger but only calls .warning(..., exc_info=...),
        # which its own Logger has: the writer function passes its Powertools Logger.
        super().__init__(event_type=EventType.SQS, logger=logger)  # type: ignore[arg-type]
        self.storage = storage
        self.outcome = BatchOutcome()
        self._decoded: list[tuple[DecodedMessage, dict[str, Any]]] = []

    def _prepare(self) -> None:
        super()._prepare()
        self._decoded = []
        self.outcome = BatchOutcome()

    def _process_record(self, record: dict[str, Any]) -> tuple[str, Any, Any]:
        sqs_record = SQSRecord(record)
        try:
            message = self.handler(record=sqs_record)
        except Exception:  # a poison message fails alone, as in Powertools' BatchProcessor
            return self.failure_handler(sqs_record, sys.exc_info())
        self._decoded.append((message, record))
        return ("decoded", message, record)

    async def _async_process_record(self, record: dict[str, Any]) -> tuple[str, Any, Any]:
        raise NotImplementedError("the writer processes its batch synchronously")

    def _clean(self) -> None:
        self.outcome = write_batch(self.storage, [message for message, _record in self._decoded])
        for message, record in self._decoded:
            error = self.outcome.failed.get(message.message_id)
            if error is None:
                self.success_handler(record, message)
            else:
                self.failure_handler(SQSRecord(record), (type(error), error, error.__traceback__))
        self._decoded = []
        super()._clean()  # builds batchItemFailures from the failures; raises when all failed
