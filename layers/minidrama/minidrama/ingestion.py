"""Getting events in: one pipeline for the HTTP API (Lambda and local server), the CLI and the demo.

A batch goes: decode (``parse_float=Decimal``, so money stays exact) -> request limits ->
:func:`minidrama.validation.validate_events` -> rejected events to the quarantine -> accepted
rows to a :class:`Sink`. The sink is SQS in the deployed stack (:class:`minidrama.queue.SqsSink`)
and the Parquet writer on a local lake (:class:`minidrama.writer.ParquetSink`). Both the
quarantine file and the sink write are done before :func:`ingest` returns, so a caller answers
only once the batch is durable; when either fails the error propagates and nothing is answered
as accepted (a retry may store rejected lines twice in the quarantine and accepted events twice
in the lake, which readers deduplicate by ``event_id``).

Quarantine files (``lake.quarantine_key``) are JSON Lines, one line per rejected event::

    {"received_at": "2026-11-28T12:00:00.5Z", "app_id": "A", "index": 3, "event_id": "e-3" | null,
     "errors": ["event_time: ..."], "raw": <the event as sent>}

``index`` is the event's position in the request's ``events`` array; for ``minidrama ingest``
it is the 1-based line number and ``source`` names the file. ``raw`` is the value as sent,
re-serialized; a decimal number that a double cannot hold exactly is kept as a string, and a
file line that is not JSON is kept as its text. A whole request refused with 400 or 413 holds no
events and is not quarantined: the client gets the reason in the answer and can fix and resend.

This module runs in the ingest function, which has no pyarrow: it must not import pyarrow.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from minidrama.config import AppConfig, Rates, load_rates
from minidrama.lake import Storage, quarantine_key
from minidrama.progress import Progress
from minidrama.queue import EventEncodingError, encode_row
from minidrama.validation import Rejection, validate_events

__all__ = [
    "MAX_EVENTS_PER_REQUEST",
    "MAX_NESTING",
    "too_deep",
    "MAX_BODY_BYTES",
    "FILE_CHUNK_LINES",
    "PSEUDO_FILESYSTEMS",
    "RequestError",
    "MalformedRequestError",
    "PayloadTooLargeError",
    "Sink",
    "IngestResult",
    "decode_json",
    "parse_request_body",
    "quarantine_lines",
    "write_quarantine",
    "ingest",
    "ingest_body",
    "TableSink",
    "ingest_events",
    "ingest_files",
]

MAX_EVENTS_PER_REQUEST = 1_000
MAX_NESTING = 500  # levels of arrays and objects in a request body or a line
MAX_BODY_BYTES = 1024 * 1024  # "1 MB" of the contract, read as 1 MiB of request body
FILE_CHUNK_LINES = 10_000  # `minidrama ingest --per-event` validates and writes files in chunks this long
BULK_CHUNK_LINES = 50_000  # the bulk path checks chunks this long ...
BULK_FLUSH_ROWS = 1_000_000  # ... and writes its accepted rows at the end, or after this many (~1 GB)
PARALLEL_BYTES = 32 * 1024 * 1024  # input from which the bulk path checks chunks in worker processes
MAX_WORKERS = 4


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector paused while a chunk (or a request body) is decoded and checked by
    the bulk path: a chunk makes hundreds of thousands of objects (records, tuples, property dicts)
    that all go by reference counting, and the collector's passes over them cost about 6 % of a
    chunk's time. Also a decorator."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class RequestError(Exception):
    """A whole request is refused; ``status`` is the HTTP status that says why."""

    status = 400
    code = "bad_request"


class MalformedRequestError(RequestError):
    """The body is not JSON, or not ``{"events": [...]}``."""

    status = 400
    code = "malformed_request"


class PayloadTooLargeError(RequestError):
    """The body is over :data:`MAX_BODY_BYTES` or holds over :data:`MAX_EVENTS_PER_REQUEST` events."""

    status = 413
    code = "payload_too_large"


class Sink(Protocol):
    """Where accepted rows go; returns only once they are durable, raises otherwise.

    ``encoded`` holds the same rows in the queue's wire format (:func:`minidrama.queue.encode_row`),
    computed once by the pipeline's size check so that the SQS sink does not encode twice.
    """

    def write(self, app_id: str, rows: list[dict[str, Any]], encoded: list[bytes] | None = None) -> None: ...


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    rejected: list[Rejection]
    quarantine_key: str | None = None


# --- request decoding (pure) -----------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode_json(text: str | bytes) -> Any:
    """Strict JSON with exact decimals: non-integral numbers become ``Decimal``; NaN/Infinity are
    errors, and so is nesting deeper than :data:`MAX_NESTING` levels (``ValueError`` each)."""
    if too_deep(text):
        raise ValueError(f"nested too deeply (more than {MAX_NESTING} levels of arrays and objects)")
    return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)


_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def too_deep(text: str | bytes) -> bool:
    """Nested more than :data:`MAX_NESTING` levels: a fixed limit, where Python's decoder would stop
    at its recursion limit, which depends on how deep the caller's stack is. Fast for any body: the
    brackets alone are looked at, strings left out only when the brackets in them could matter."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if len(data) < 4096 and data.count(b"[") + data.count(b"{") <= MAX_NESTING:
        return False  # a line: too few brackets to nest that deep
    brackets = data.translate(None, _NOT_BRACKETS)
    if brackets.count(b"[") + brackets.count(b"{") <= MAX_NESTING or not _deeper_than_limit(brackets):
        return False  # not even counting the brackets inside strings
    return _deeper_than_limit(_STRING.sub(b'""', data).translate(None, _NOT_BRACKETS))


def _deeper_than_limit(brackets: bytes) -> bool:
    """Whether brackets (``[]{}`` only) nest more than :data:`MAX_NESTING` deep: each round takes
    the innermost pairs away; unbalanced ones are left to the decoder, which refuses them."""
    for _ in range(MAX_NESTING):
        innermost = brackets.replace(b"[]", b".").replace(b"{}", b".")
        if innermost == brackets:
            return False
        brackets = innermost.replace(b".", b"")
        if not brackets:
            return False
    return True


_JSON_KINDS = {
    dict: "an object",
    str: "a string",
    int: "a number",
    Decimal: "a number",
    bool: "true or false",
    type(None): "null",
}


def parse_request_body(body: bytes) -> list[Any]:
    """The ``events`` of a request body, or :class:`RequestError` saying what is wrong with it."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(
            # The local server stops reading one byte past the limit, so say "over", not a size.
            f"request body is over the limit of {MAX_BODY_BYTES} bytes (1 MiB): "
            "send the events in smaller batches"
        )
    try:
        document = decode_json(body)
    except UnicodeDecodeError as error:
        raise MalformedRequestError(
            f"request body is not UTF-8 text: {error.reason} at byte {error.start}"
        ) from error
    except RecursionError as error:
        raise MalformedRequestError("request body is not valid JSON: nested too deeply") from error
    except ValueError as error:
        raise MalformedRequestError(f"request body is not valid JSON: {error}") from error
    if not isinstance(document, dict) or "events" not in document:
        raise MalformedRequestError('request body must be a JSON object {"events": [...]}')
    events = document["events"]
    if not isinstance(events, list):
        raise MalformedRequestError(
            f'"events" must be an array of event objects, got {_JSON_KINDS.get(type(events), "a value")}'
        )
    if len(events) > MAX_EVENTS_PER_REQUEST:
        raise PayloadTooLargeError(
            f"request holds {len(events)} events; the limit is {MAX_EVENTS_PER_REQUEST} per request: "
            "send them in smaller batches"
        )
    return events


# --- quarantine ------------------------------------------------------------------------------


def _raw_json(value: Any) -> Any:
    """JSON for a Decimal of the input: a number when a double holds it exactly, else its text."""
    if isinstance(value, Decimal):
        as_float = float(value)
        if value.is_finite() and Decimal(repr(as_float)) == value:
            return as_float
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def quarantine_lines(
    app_id: str, received_at: datetime, rejected: list[Rejection], source: str | None = None
) -> bytes:
    """The JSON Lines of a quarantine file for the rejected events of one batch."""
    received = _utc_text(received_at)
    lines = []
    for rejection in rejected:
        record: dict[str, Any] = {
            "received_at": received,
            "app_id": app_id,
            "index": rejection.index,
            "event_id": rejection.event_id,
            "errors": rejection.errors,
            "raw": rejection.raw,
        }
        if source is not None:
            record["source"] = source
        lines.append(json.dumps(record, default=_raw_json, ensure_ascii=True))
    return ("\n".join(lines) + "\n").encode()


def write_quarantine(
    storage: Storage, app_id: str, received_at: datetime, rejected: list[Rejection], source: str | None = None
) -> str | None:
    """Store the rejected events of one batch in one quarantine file; returns its key (None when none)."""
    if not rejected:
        return None
    key = quarantine_key(app_id, received_at.astimezone(UTC).date())
    storage.put_bytes(key, quarantine_lines(app_id, received_at, rejected, source), "application/x-ndjson")
    return key


# --- the pipeline ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Checked:
    accepted: list[dict[str, Any]]
    encoded: list[bytes]  # the accepted rows in the queue's wire format
    rejected: list[Rejection]
    # accepted events whose event_id came earlier in the same batch: counted as accepted, not
    # stored again, so that within a batch the first copy stands (later batches are received later)
    repeated: int = 0


def _check(app: AppConfig, events: list[Any], received_at: datetime, rates: Rates) -> _Checked:
    """Validate, then move accepted rows that cannot travel through the queue to the rejected."""
    result = validate_events(events, received_at=received_at, currency=app.currency, rates=rates)
    rejected_at = {rejection.index for rejection in result.rejected}
    positions = (index for index in range(len(events)) if index not in rejected_at)
    accepted: list[dict[str, Any]] = []
    encoded: list[bytes] = []
    refused: list[Rejection] = []
    seen: set[str] = set()
    repeated = 0
    for row, index in zip(result.accepted, positions, strict=True):
        if row["event_id"] in seen:
            repeated += 1
            continue
        try:
            encoded.append(encode_row(row))
        except EventEncodingError as error:
            refused.append(Rejection(index, row["event_id"], [f"event: {error}"], events[index]))
        else:
            accepted.append(row)
            seen.add(row["event_id"])
    rejected = sorted([*result.rejected, *refused], key=lambda rejection: rejection.index)
    return _Checked(accepted, encoded, rejected, repeated)


def _store(
    storage: Storage,
    sink: Sink,
    app: AppConfig,
    received_at: datetime,
    checked: _Checked,
    source: str | None = None,
) -> IngestResult:
    key = write_quarantine(storage, app.app_id, received_at, checked.rejected, source)
    if checked.accepted:
        sink.write(app.app_id, checked.accepted, checked.encoded)
    return IngestResult(len(checked.accepted) + checked.repeated, checked.rejected, key)


def ingest(
    storage: Storage, sink: Sink, app: AppConfig, events: list[Any], *, received_at: datetime, rates: Rates
) -> IngestResult:
    """Validate one batch, quarantine the rejected events, hand the accepted rows to ``sink``.

    Returns once both are durable; raises (and the caller must not report success) otherwise.
    """
    return _store(storage, sink, app, received_at, _check(app, events, received_at, rates))


@runtime_checkable
class TableSink(Protocol):
    """A sink that also takes a request's outcome as an Arrow table of its accepted rows and its
    quarantine file (the local lake's): with one, a request's events are checked by the bulk path
    (:func:`ingest_body`), and the sink stores both (durable on return, or as the sink documents)."""

    def write(self, app_id: str, rows: list[dict[str, Any]], encoded: list[bytes] | None = None) -> None: ...

    def write_table(self, app_id: str, table: Any, quarantine: tuple[str, bytes] | None) -> None: ...


@collector_paused()
def ingest_body(
    storage: Storage,
    sink: TableSink,
    app: AppConfig,
    body: bytes,
    *,
    received_at: datetime,
    rates: Rates,
) -> IngestResult:
    """One request body, checked by the bulk path (:mod:`minidrama.bulk`, the local server's way):
    the answer of :func:`ingest` of :func:`parse_request_body`'s events, the same rows stored and
    the same rejections, the same :class:`RequestError` for a body that is refused. Durable on
    return, as :func:`ingest`."""
    from minidrama.bulk import check_bulk, decode_body, decode_exactly

    decoded = decode_body(body) if len(body) <= MAX_BODY_BYTES and not too_deep(body) else None
    if decoded is None or len(decoded[0]) > MAX_EVENTS_PER_REQUEST:
        # refused (parse_request_body says why), or JSON that only the exact decoder reads
        return ingest(storage, sink, app, parse_request_body(body), received_at=received_at, rates=rates)
    events, texts = decoded

    def exactly(positions: list[int]) -> list[Any]:
        """The deferred events read exactly, each from its own text; the whole body when msgspec
        refuses one of them (the exact decoder then reads it, or says why the body is refused)."""
        try:
            return [decode_exactly(texts[position]) for position in positions]
        except ValueError:
            everything = parse_request_body(body)
            return [everything[position] for position in positions]

    checked = check_bulk(
        events,
        exact=exactly,
        received_at=received_at,
        currency=app.currency,
        rates=rates,
        seen=set(),
    )
    rejected = sorted([*checked.rejected, *checked.refused], key=lambda rejection: rejection.index)
    quarantine = None
    if rejected:
        key = quarantine_key(app.app_id, received_at.astimezone(UTC).date())
        quarantine = (key, quarantine_lines(app.app_id, received_at, rejected))
    sink.write_table(app.app_id, checked.table, quarantine)
    return IngestResult(
        checked.table.num_rows + checked.repeated, rejected, quarantine[0] if quarantine else None
    )


def ingest_events(
    storage: Storage,
    app: AppConfig,
    events: list[Any],
    *,
    received_at: datetime | None = None,
    rates: Rates | None = None,
    bulk: bool = False,
) -> IngestResult:
    """Ingest a batch of decoded events straight into a lake (the demo, tests).

    ``received_at`` defaults to now; ``rates`` to the lake's configured rates. ``bulk`` checks the
    batch by the bulk path (:mod:`minidrama.bulk`, as the local server does), with the same
    outcomes as the per-event path.
    """
    # Imported here, not at the top: the writer needs pyarrow, which the ingest function lacks.
    from minidrama.writer import ParquetSink, write_table

    received_at = received_at or datetime.now(UTC)
    rates = rates if rates is not None else load_rates(storage)
    if bulk:
        from minidrama.bulk import check_bulk

        checked = check_bulk(
            [event if type(event) is dict else None for event in events],
            exact=lambda positions: [events[position] for position in positions],
            received_at=received_at,
            currency=app.currency,
            rates=rates,
            seen=set(),
        )
        rejected = sorted([*checked.rejected, *checked.refused], key=lambda rejection: rejection.index)
        key = write_quarantine(storage, app.app_id, received_at, rejected)
        write_table(storage, app.app_id, checked.table)
        return IngestResult(checked.table.num_rows + checked.repeated, rejected, key)
    return ingest(
        storage,
        ParquetSink(storage),
        app,
        events,
        received_at=received_at,
        rates=rates,
    )


# --- files (`minidrama ingest`) --------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    number: int  # 1-based
    value: Any
    error: str | None  # why the line is not JSON


# Kernel interfaces that look like regular files (/proc/self/mem, /sys/...): never event files.
PSEUDO_FILESYSTEMS = (Path("/proc"), Path("/sys"))

_READ_BLOCK = 1 << 20
_LINES_READ = 1 << 16  # small enough for progress to move on a small file, large enough to be cheap


def _not_regular(info: os.stat_result) -> str | None:
    """Why a file is not one to read events from (None when it is a regular file on a disk)."""
    kinds = [
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a directory"),
    ]
    for test, kind in kinds:
        if test(info.st_mode):
            return f"{kind}, not a regular file"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    for root in PSEUDO_FILESYSTEMS:
        with suppress(OSError):
            if root.stat().st_dev == info.st_dev:
                return f"a {root} pseudo-file, not a regular file"
    return None


def _open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading; OSError when it cannot be opened or is not a regular file.

    Opened with O_NONBLOCK and checked on the open descriptor: opening a named pipe for reading
    would otherwise wait for a writer forever, and a check by name could be raced.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(descriptor)
        reason = _not_regular(info)
        if reason is not None:
            raise OSError(reason)
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _check_file(path: Path) -> int:
    """Open ``path`` as a regular file and read it to its end (a read error shows before a row is
    stored); returns its size in bytes."""
    size = 0
    with _open_regular(path) as handle:
        while block := handle.read(_READ_BLOCK):
            size += len(block)
    return size


def _raw_lines(path: Path, progress: Progress | None = None) -> Iterator[tuple[int, bytes]]:
    """The file's lines that are not blank, with their 1-based numbers."""
    for first, lines in _line_blocks(path, progress):
        for offset, line in enumerate(lines):
            if line.strip():
                yield first + offset, line


def _line_blocks(path: Path, progress: Progress | None = None) -> Iterator[tuple[int, list[bytes]]]:
    """The file's lines (blank ones included, without their newline) in blocks of whatever one
    read of the file holds, each with the number of its first line."""
    for first, block in _byte_blocks(path, progress, 1):
        yield first, block.split(b"\n")


def _line_spans(
    path: Path, progress: Progress | None, lines_per_block: int
) -> Iterator[tuple[tuple[int, int, int, int], int, int, int]]:
    """:func:`_spans` of the file, each with the file's identity: what a worker process reads of
    the file itself (:func:`_read_span`), so that the blocks do not travel through a pipe."""
    with _open_regular(path) as handle:
        identity = _identity(os.fstat(handle.fileno()))
        for number, offset, length in _spans(handle, progress, lines_per_block):
            yield identity, number, offset, length


def _spans(
    handle: BinaryIO, progress: Progress | None, lines_per_block: int
) -> Iterator[tuple[int, int, int]]:
    """An open file in spans of whole lines of at least ``lines_per_block`` lines (the last one
    may be shorter), each as (number of its first line, offset, length without its last
    newline); the file is read once, in pieces, and nothing is copied."""
    number, start, position, count = 1, 0, 0, 0
    while data := handle.read(_LINES_READ):
        if progress is not None:
            progress.advance(len(data))
        newlines = data.count(b"\n")
        count += newlines
        if newlines and count >= lines_per_block:
            cut = position + data.rindex(b"\n")
            yield number, start, cut - start
            number += count
            start, count = cut + 1, 0
        position += len(data)
    if position > start:
        yield number, start, position - start


def _identity(info: os.stat_result) -> tuple[int, int, int, int]:
    """What tells a file from another put in its place, or from itself changed."""
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def _read_span(path: Path, identity: tuple[int, int, int, int], offset: int, length: int) -> bytes:
    """``length`` bytes of the file from ``offset``; OSError when the file at ``path`` is no longer
    the one whose lines were counted (``identity``: replaced, or changed) or no longer holds them."""
    with _open_regular(path) as handle:
        if _identity(os.fstat(handle.fileno())) != identity:
            raise OSError(errno.ESTALE, "the file was replaced or changed while it was being ingested")
        return _pread(handle, offset, length)


def _pread(handle: BinaryIO, offset: int, length: int) -> bytes:
    """``length`` bytes of an open file from ``offset`` (its position unmoved); OSError when the
    file no longer holds them."""
    pieces, read = [], 0
    while read < length:
        piece = os.pread(handle.fileno(), length - read, offset + read)
        if not piece:
            raise OSError(errno.EIO, "the file became shorter while it was being ingested")
        pieces.append(piece)
        read += len(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _byte_blocks(path: Path, progress: Progress | None, lines_per_block: int) -> Iterator[tuple[int, bytes]]:
    """The file in blocks of whole lines (:func:`_spans`), each without its last newline and with
    the number of its first line."""
    with _open_regular(path) as handle:
        for number, offset, length in _spans(handle, progress, lines_per_block):
            yield number, _pread(handle, offset, length)


def _decode_line(number: int, raw: bytes) -> _Line:
    """One line decoded exactly (``parse_float=Decimal``), or why it is not an event."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return _Line(number, raw.decode("utf-8", "replace").rstrip("\r\n"), f"not UTF-8 text: {error.reason}")
    try:
        return _Line(number, decode_json(text), None)
    except (ValueError, RecursionError) as error:
        return _Line(number, text.rstrip("\r\n"), f"not valid JSON: {error}")


def _read_lines(path: Path, progress: Progress | None = None) -> Iterator[_Line]:
    for number, raw in _raw_lines(path, progress):
        yield _decode_line(number, raw)


def _chunks(lines: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _ingest_lines(
    storage: Storage,
    sink: Sink,
    app: AppConfig,
    rates: Rates,
    path: Path,
    lines: list[_Line],
    received_at: datetime,
) -> IngestResult:
    """One chunk of one file; rejection indexes become line numbers, undecodable lines are rejected too."""
    decoded = [line for line in lines if line.error is None]
    unreadable = [
        Rejection(line.number, None, [f"line {line.number}: {line.error}"], line.value)
        for line in lines
        if line.error is not None
    ]
    checked = _check(app, [line.value for line in decoded], received_at, rates)
    by_line = [replace(rejection, index=decoded[rejection.index].number) for rejection in checked.rejected]
    all_rejected = sorted([*unreadable, *by_line], key=lambda rejection: rejection.index)
    return _store(storage, sink, app, received_at, replace(checked, rejected=all_rejected), source=str(path))


@dataclass
class _ChunkChecked:
    """A chunk of lines checked by :func:`_check_lines`: rejections carry line numbers, and
    ``lines`` the line number of each accepted row of ``table``."""

    table: Any  # pyarrow.Table of the accepted rows
    lines: list[int]
    rejected: list[Rejection]
    refused: list[Rejection]
    repeated: int


def _check_span(span: _Span, received_at: datetime, currency: str, rates: Rates) -> _ChunkChecked:
    """:func:`_check_lines` of a span of a file (:func:`_line_spans`), read here: a worker
    process's job."""
    try:
        block = _read_span(span.path, span.identity, span.offset, span.length)
    except OSError as error:
        raise _ReadError(str(span.path), error.strerror or str(error)) from None
    return _check_lines(span.first, block, received_at, currency, rates)


class _ReadError(Exception):
    """A file that was read in full once failed on a later reading (a disk error, a file replaced
    meanwhile); raised by the readers, in worker processes too, so that it is told apart from an
    error storing into the lake."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path, self.reason = path, reason


def _reading(path: Path, items: Iterator[Any]) -> Iterator[Any]:
    """``items``, an OSError while reading ``path`` raised as :class:`_ReadError`."""
    try:
        yield from items
    except OSError as error:
        raise _ReadError(str(path), error.strerror or str(error)) from error


@dataclass(frozen=True)
class _Span:
    """A chunk of lines of a file: the file, its identity when its lines were counted, the number
    of the chunk's first line, its offset and length."""

    path: Path
    identity: tuple[int, int, int, int]
    first: int
    offset: int
    length: int


@collector_paused()
def _check_lines(
    first: int, block: bytes, received_at: datetime, currency: str, rates: Rates
) -> _ChunkChecked:
    """Check one block of lines, the first numbered ``first`` (:func:`minidrama.bulk.check_bulk`).
    Blank lines are skipped; a line that is not JSON or not UTF-8 is rejected as the per-event path
    rejects it."""
    from minidrama.bulk import check_bulk, decode_exactly, decode_lines

    lines = [(first + offset, line) for offset, line in enumerate(block.split(b"\n")) if line.strip()]
    fast = decode_lines([raw for _number, raw in lines])
    kept: list[int] = []  # indexes into lines of the lines that are JSON
    exact: dict[int, Any] = {}
    unreadable = []
    for index, value in enumerate(fast):
        if value is None:  # orjson could not read it: read it exactly, or say why it is no event
            line = _decode_line(*lines[index])
            if line.error is not None:
                unreadable.append(
                    Rejection(line.number, None, [f"line {line.number}: {line.error}"], line.value)
                )
                continue
            exact[index] = line.value
        kept.append(index)

    undecodable: dict[int, _Line] = {}  # deferred lines that only orjson could read (too deep)

    def exactly(positions: list[int]) -> list[Any]:
        values = []
        for position in positions:
            if kept[position] in exact:
                values.append(exact[kept[position]])
                continue
            try:  # a line the fast decoders read is not nested too deeply
                values.append(decode_exactly(lines[kept[position]][1]))
                continue
            except ValueError:
                pass
            line = _decode_line(*lines[kept[position]])
            if line.error is not None:
                undecodable[position] = line
            values.append(line.value)
        return values

    checked = check_bulk(
        [fast[index] for index in kept],
        exact=exactly,
        received_at=received_at,
        currency=currency,
        rates=rates,
        seen=set(),
    )

    def by_line(rejections: list[Rejection]) -> list[Rejection]:
        return [replace(rejection, index=lines[kept[rejection.index]][0]) for rejection in rejections]

    # a deferred line the exact decoder cannot read is rejected as the per-event path rejects it
    unreadable += [
        Rejection(line.number, None, [f"line {line.number}: {line.error}"], line.value)
        for line in undecodable.values()
    ]
    checked.rejected = [rejection for rejection in checked.rejected if rejection.index not in undecodable]
    rejected = sorted([*unreadable, *by_line(checked.rejected)], key=lambda rejection: rejection.index)
    numbers = [lines[kept[position]][0] for position in checked.positions]
    return _ChunkChecked(checked.table, numbers, rejected, by_line(checked.refused), checked.repeated)


@dataclass
class _Pending:
    path: Path
    received_at: datetime
    checked: _ChunkChecked


@dataclass
class _Flush:
    """What one flush of the bulk path stores: quarantine files, then Parquet files (each removed
    once stored), and the ids and counts they hold."""

    quarantine: list[tuple[datetime, list[Rejection], str]]
    files: list[tuple[str, bytes]]
    ids: list[str]
    accepted: int
    rejected: int


class _BulkFile:
    """``minidrama ingest``'s bulk path: chunks of lines checked column-wise (:mod:`minidrama.bulk`),
    in worker processes when the input is big, the accepted rows of each chunk encoded into the
    call's Parquet files as it arrives (:class:`~minidrama.writer.PartitionFiles`: one file per
    hour partition), which are stored at the end of the call (or every :data:`BULK_FLUSH_ROWS`
    rows) with each chunk's rejected events in a quarantine file; the first copy of each event id
    in the call kept, in input order."""

    def __init__(self, storage: Storage, app: AppConfig, rates: Rates) -> None:
        from minidrama.writer import PartitionFiles

        self.storage, self.app, self.rates = storage, app, rates
        self.files = PartitionFiles(app.app_id)
        self.ids: set[str] = set()  # event ids kept since the last flush
        self.stored_ids: list[Any] = []  # event ids written by earlier flushes of this call
        self.quarantine: list[tuple[datetime, list[Rejection], str]] = []  # stored at the flush
        self.accepted = self.rejected = 0  # since the last flush
        self.stored_accepted = self.stored_rejected = 0  # stored by the flushes
        self.unstored: _Flush | None = None  # a flush that failed midway, resumed by the next

    def checked(
        self,
        chunks: Iterator[_Span],
        clock: Callable[[], datetime],
        pool: tuple[Any, int] | None,
    ) -> Iterator[_Pending]:
        """Each chunk (a span of a file: :func:`_line_spans`) checked, in order: by the worker
        processes of ``pool`` (:func:`_worker_pool`: the pool and how many), or here when None."""
        currency, rates = self.app.currency, self.rates
        if pool is None:
            for span in chunks:
                received_at = clock()
                yield _Pending(span.path, received_at, _check_span(span, received_at, currency, rates))
            return
        from collections import deque

        executor, workers = pool
        jobs: deque[Any] = deque()
        for span in chunks:
            received_at = clock()
            job = executor.submit(_check_span, span, received_at, currency, rates)
            jobs.append((span.path, received_at, job))
            if len(jobs) > 2 * workers:  # bounded: two chunks per worker and one waiting
                done_path, done_at, done = jobs.popleft()
                yield _Pending(done_path, done_at, done.result())
        while jobs:
            done_path, done_at, done = jobs.popleft()
            yield _Pending(done_path, done_at, done.result())

    def add(self, pending: _Pending) -> None:
        """A chunk's outcome, in input order: its rows whose event id no earlier chunk kept go
        to the files; a refused event whose id an earlier line stored is a repeat (accepted), as
        the per-event path counts it; its rejections are stored with the rows."""
        import pyarrow as pa

        checked = pending.checked
        table = checked.table
        self.accepted += table.num_rows + checked.repeated
        self.rejected += len(checked.rejected) + len(checked.refused)
        ids = table.column("event_id").to_pylist()
        earlier = self._stored_before([*ids, *(rejection.event_id for rejection in checked.refused)])
        if not (self.ids.isdisjoint(ids) and earlier.isdisjoint(ids)):
            # a later copy counts as accepted (it was), but is not stored
            keep = [event_id not in self.ids and event_id not in earlier for event_id in ids]
            table = table.filter(pa.array(keep, pa.bool_()))
            ids = [event_id for event_id, kept in zip(ids, keep, strict=True) if kept]
        refused = []
        for rejection in checked.refused:
            if rejection.event_id in self.ids or rejection.event_id in earlier:
                # stored by an earlier line of the call: the per-event path counts it as a repeat
                self.accepted += 1
                self.rejected -= 1
            else:
                refused.append(rejection)
        rejected = sorted([*checked.rejected, *refused], key=lambda rejection: rejection.index)
        self.quarantine.append((pending.received_at, rejected, str(pending.path)))
        self.ids.update(ids)
        self.files.add(table)
        if self.files.rows >= BULK_FLUSH_ROWS:
            self.flush()

    def _stored_before(self, ids: list[Any]) -> set[str]:
        """Those of ``ids`` that an earlier flush of this call stored."""
        import pyarrow as pa
        import pyarrow.compute as pc

        found: set[str] = set()
        if not self.stored_ids or not ids:
            return found
        chunk = pa.array(ids, pa.string())
        for stored in self.stored_ids:
            # the chunk's ids are the small side: the hash set is built of them, the stored scanned
            found.update(stored.filter(pc.is_in(stored, value_set=chunk)).to_pylist())
        return found

    def flush(self) -> None:
        """Store the files of the rows kept since the last flush, with their quarantine files; a
        flush that failed midway (OSError) is taken up where it stopped."""
        import pyarrow as pa

        from minidrama.writer import PARQUET_CONTENT_TYPE

        if self.unstored is None:
            files = self.files.close() if self.files.rows else []
            self.unstored = _Flush(self.quarantine, files, list(self.ids), self.accepted, self.rejected)
            self.quarantine, self.ids, self.accepted, self.rejected = [], set(), 0, 0
        unstored = self.unstored
        while unstored.quarantine:  # with the rows, as one batch
            received_at, rejected, source = unstored.quarantine[0]
            write_quarantine(self.storage, self.app.app_id, received_at, rejected, source=source)
            unstored.quarantine.pop(0)
        while unstored.files:
            key, data = unstored.files[0]
            self.storage.put_bytes(key, data, PARQUET_CONTENT_TYPE)
            unstored.files.pop(0)
        if unstored.ids:
            self.stored_ids.append(pa.array(unstored.ids, pa.string()))
        self.stored_accepted += unstored.accepted
        self.stored_rejected += unstored.rejected
        self.unstored = None


def ingest_files(
    storage: Storage,
    app: AppConfig,
    paths: list[Path],
    *,
    quiet: bool = False,
    bulk: bool = True,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """``minidrama ingest``: NDJSON files into the lake; prints ``{"accepted": N, "rejected": M}``.

    Progress (bytes read) goes to stderr unless ``quiet`` (:class:`~minidrama.progress.Progress`).

    Every file is checked before anything is stored: it must be a regular file (not a named pipe,
    a device, a directory, a /proc or /sys file) and read to its end without an error; otherwise
    the file is named on stderr, nothing is ingested and the result is 2. Returns 0 otherwise,
    also when some lines were rejected. Files are read twice (checked, then ingested in chunks),
    so memory stays bounded for files of any size.

    ``bulk`` (the default) checks chunks of :data:`BULK_CHUNK_LINES` lines column-wise and writes
    the accepted rows once per call, one Parquet file per hour partition (every
    :data:`BULK_FLUSH_ROWS` rows for a bigger call); the first copy of an ``event_id`` in the call
    stands; its worker processes are started by multiprocessing's forkserver, so a script that
    calls this must guard its main module (``if __name__ == "__main__":``), as multiprocessing
    asks. Otherwise each chunk of :data:`FILE_CHUNK_LINES` lines is validated event by event
    (the API's path) and written at once. Both give the same rows and rejections. ``clock`` gives
    each chunk its receipt time.
    """
    # Worker processes pay off once there are a few chunks to share; they start (~0.5 s) while
    # the files are checked.
    parallel = bulk and _sizes(paths) >= PARALLEL_BYTES
    with _worker_pool() if parallel else nullcontext() as pool:
        total_bytes = _checked_bytes(paths)
        code = (
            2
            if total_bytes is None
            else _ingest_checked_files(
                storage, app, paths, total_bytes, pool, quiet=quiet, bulk=bulk, clock=clock
            )
        )
    return code


def _checked_bytes(paths: list[Path]) -> int | None:
    """The files' bytes, each read to its end (:func:`_check_file`); None, having said which file
    cannot be read and why, when one cannot."""
    total_bytes = 0
    for path in paths:
        try:
            total_bytes += _check_file(path)
        except OSError as error:
            print(
                f"minidrama: cannot read {path}: {error.strerror or error} (nothing was ingested)",
                file=sys.stderr,
            )
            return None
    return total_bytes


def _sizes(paths: list[Path]) -> int:
    """The files' sizes as their names say (0 for one that cannot be looked at: checked later)."""
    total = 0
    for path in paths:
        with suppress(OSError):
            total += path.stat().st_size
    return total


@contextmanager
def _worker_pool() -> Iterator[tuple[Any, int]]:
    """The bulk path's worker processes (one per core, at most :data:`MAX_WORKERS`), started at
    once: the pool and how many."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["minidrama.bulk"])
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for _ in range(workers):
            pool.submit(_started)
        yield pool, workers


def _started() -> None:
    """A no-op: submitting one per worker starts the worker processes."""


def _ingest_checked_files(
    storage: Storage,
    app: AppConfig,
    paths: list[Path],
    total_bytes: int,
    pool: tuple[Any, int] | None,
    *,
    quiet: bool,
    bulk: bool,
    clock: Callable[[], datetime],
) -> int:
    from minidrama.writer import ParquetSink  # pyarrow: see ingest_events

    sink = ParquetSink(storage)
    rates = load_rates(storage)
    batch = _BulkFile(storage, app, rates)
    accepted = rejected = 0  # stored by the per-event path

    def bulk_chunks(progress: Progress) -> Iterator[_Span]:
        for path in paths:
            spans = _reading(path, _line_spans(path, progress, BULK_CHUNK_LINES))
            for identity, first, offset, length in spans:
                yield _Span(path, identity, first, offset, length)

    def stored() -> str:
        return f"{accepted + batch.stored_accepted} accepted, {rejected + batch.stored_rejected} rejected"

    with Progress(total_bytes, "ingest", unit="B", quiet=quiet) as progress:
        try:
            try:
                if bulk:
                    for pending in batch.checked(bulk_chunks(progress), clock, pool):
                        batch.add(pending)
                else:
                    for path in paths:
                        lines = _reading(path, _read_lines(path, progress))
                        for chunk in _chunks(lines, FILE_CHUNK_LINES):
                            result = _ingest_lines(storage, sink, app, rates, path, chunk, clock())
                            accepted += result.accepted
                            rejected += len(result.rejected)
            except _ReadError as error:
                # Only when a file that was read in full fails on a later reading (a disk error,
                # a file replaced meanwhile): store what was checked, and say so.
                batch.flush()
                print(
                    f"minidrama: cannot read {error.path}: {error.reason} (ingested before the error: "
                    f"{stored()})",
                    file=sys.stderr,
                )
                return 2
            batch.flush()
        except OSError as error:  # storing into the lake failed
            print(
                f"minidrama: cannot store in the lake {storage.uri}: {error.strerror or error} (stored "
                f"before the error: {stored()}; the rest is not: run the same command again, "
                "an event stored twice is counted once)",
                file=sys.stderr,
            )
            return 2
    print(
        json.dumps(
            {"accepted": accepted + batch.stored_accepted, "rejected": rejected + batch.stored_rejected}
        )
    )
    return 0
