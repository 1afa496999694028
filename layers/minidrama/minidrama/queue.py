"""The SQS buffer between the ingest and writer functions: the message format and a sink that sends.

A message body is compact JSON (format version 1)::

    {"v": 1, "app_id": "A", "events": [{"event_id": "e1", "event_time": "2026-11-28T10:15:00+00:00", ...}]}

Each event is a row of :data:`minidrama.schema.EVENT_COLUMNS` with null columns left out,
timestamps as RFC 3339 strings and decimals as strings, so money stays exact on the wire.

Sizes follow the SQS limits: a message body is at most :data:`MAX_MESSAGE_BYTES`, and one
``SendMessageBatch`` call holds at most :data:`MAX_BATCH_ENTRIES` entries whose bodies total at
most :data:`MAX_BATCH_BYTES`. One event encodes to at most :data:`MAX_EVENT_BYTES` (ingestion
rejects bigger ones), so every message holds at least a few events.

This module is used by the ingest function, which has no pyarrow: it must not import it.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from minidrama.config import APP_ID_PATTERN
from minidrama.schema import AMOUNT_SCALE, EVENT_COLUMNS

__all__ = [
    "MESSAGE_VERSION",
    "MAX_MESSAGE_BYTES",
    "MAX_BATCH_ENTRIES",
    "MAX_BATCH_BYTES",
    "MAX_EVENT_BYTES",
    "QueueError",
    "EventEncodingError",
    "EnqueueError",
    "MessageDecodeError",
    "encode_row",
    "pack_messages",
    "plan_send_batches",
    "decode_message",
    "SqsSink",
]

MESSAGE_VERSION = 1
MAX_MESSAGE_BYTES = 256 * 1024
MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024
MAX_EVENT_BYTES = 192 * 1024

_COLUMN_TYPES = dict(EVENT_COLUMNS)
_EMPTY_ROW: dict[str, Any] = dict.fromkeys(_COLUMN_TYPES)

# SQS accepts any Unicode except these (and lone surrogates, which never reach here: encoding
# to UTF-8 refuses them first). JSON escapes control characters already.
_SQS_UNSAFE = re.compile("[\ufffe\uffff]")


class QueueError(Exception):
    """Base class of the errors of the SQS buffer."""


class EventEncodingError(QueueError):
    """An accepted event cannot travel through the queue (too big, or not valid Unicode)."""


class EnqueueError(QueueError):
    """Some messages could not be enqueued, even after retrying."""


class MessageDecodeError(QueueError):
    """A message body is not a valid events message (a poison message)."""


# --- encoding (pure) -------------------------------------------------------------------------


_TIMESTAMP_COLUMNS = tuple(name for name, kind in EVENT_COLUMNS if kind == "timestamp")
_DECIMAL_COLUMNS = tuple(name for name, kind in EVENT_COLUMNS if kind == "decimal")
_ROW_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_row(row: dict[str, Any]) -> bytes:
    """One accepted row as compact UTF-8 JSON, ready to be packed into a message.

    Raises :class:`EventEncodingError` when the row is bigger than :data:`MAX_EVENT_BYTES` or
    holds a string that is not valid Unicode (an unpaired surrogate escape such as ``"\\ud800"``).
    """
    wire = {column: value for column, value in row.items() if value is not None}
    for column in _TIMESTAMP_COLUMNS:
        if column in wire:
            wire[column] = wire[column].isoformat()
    for column in _DECIMAL_COLUMNS:
        if column in wire:
            wire[column] = str(wire[column])
    text = _ROW_ENCODER.encode(wire)
    if not text.isascii():
        text = _SQS_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise EventEncodingError(
            "event holds a string that is not valid Unicode (an unpaired surrogate escape such as \\ud800)"
        ) from error
    if len(encoded) > MAX_EVENT_BYTES:
        raise EventEncodingError(
            f"event is {len(encoded)} bytes once stored; the limit is {MAX_EVENT_BYTES} bytes per event"
        )
    return encoded


def _envelope(app_id: str) -> tuple[bytes, bytes]:
    head = b'{"v":%d,"app_id":%s,"events":[' % (MESSAGE_VERSION, json.dumps(app_id).encode())
    return head, b"]}"


def pack_messages(
    app_id: str, encoded_rows: Iterable[bytes], max_bytes: int = MAX_MESSAGE_BYTES
) -> list[bytes]:
    """Pack encoded rows, in order, into message bodies of at most ``max_bytes`` (greedy fill)."""
    head, tail = _envelope(app_id)
    overhead = len(head) + len(tail)
    messages: list[bytes] = []
    current: list[bytes] = []
    size = overhead
    for encoded in encoded_rows:
        needed = len(encoded) + (1 if current else 0)  # the comma between rows
        if current and size + needed > max_bytes:
            messages.append(head + b",".join(current) + tail)
            current, size, needed = [], overhead, len(encoded)
        if overhead + len(encoded) > max_bytes:
            raise EventEncodingError(f"one event of {len(encoded)} bytes does not fit in a message")
        current.append(encoded)
        size += needed
    if current:
        messages.append(head + b",".join(current) + tail)
    return messages


def plan_send_batches(
    bodies: list[bytes], max_entries: int = MAX_BATCH_ENTRIES, max_bytes: int = MAX_BATCH_BYTES
) -> list[list[bytes]]:
    """Group message bodies, in order, into SendMessageBatch calls within both SQS limits."""
    batches: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for body in bodies:
        if len(body) > max_bytes:
            raise EventEncodingError(f"a message of {len(body)} bytes exceeds the batch limit {max_bytes}")
        if current and (len(current) == max_entries or size + len(body) > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(body)
        size += len(body)
    if current:
        batches.append(current)
    return batches


# --- decoding (pure) -------------------------------------------------------------------------


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# decimal(38, AMOUNT_SCALE): at most AMOUNT_SCALE places and 38 digits in all
_DECIMAL_LIMIT = Decimal(10) ** (38 - AMOUNT_SCALE)


def _decode_value(column: str, kind: str, value: Any) -> Any:
    """One wire value as its column's type; anything the Parquet column could not hold is refused here,
    so that a bad message fails alone instead of failing the partition it would be written to."""
    if value is None:
        return None
    if kind == "string" and isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:
                raise MessageDecodeError(f"column {column!r} is not valid Unicode") from error
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int64" and isinstance(value, int) and not isinstance(value, bool):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise MessageDecodeError(f"column {column!r}: {value} does not fit in int64")
        return value
    if kind == "decimal" and isinstance(value, str):
        try:
            number = Decimal(value)
        except ArithmeticError as error:
            raise MessageDecodeError(f"column {column!r}: {value[:40]!r} is not a decimal") from error
        if not number.is_finite():
            raise MessageDecodeError(f"column {column!r}: {value[:40]!r} is not a finite decimal")
        exponent = number.as_tuple().exponent
        if not isinstance(exponent, int) or exponent < -AMOUNT_SCALE:
            raise MessageDecodeError(f"column {column!r}: {value[:40]!r} has more than {AMOUNT_SCALE} places")
        if abs(number) >= _DECIMAL_LIMIT:
            raise MessageDecodeError(
                f"column {column!r}: {value[:40]!r} does not fit in decimal(38, {AMOUNT_SCALE})"
            )
        return number
    if kind == "timestamp" and isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as error:
            raise MessageDecodeError(f"column {column!r}: {value[:40]!r} is not a timestamp") from error
        if parsed.tzinfo is None:
            raise MessageDecodeError(f"column {column!r}: {value!r} has no UTC offset")
        return parsed
    raise MessageDecodeError(f"column {column!r}: {str(value)[:40]!r} is not a {kind}")


def decode_message(body: str | bytes) -> tuple[str, list[dict[str, Any]]]:
    """The app and the typed rows of one message body; :class:`MessageDecodeError` when malformed.

    Every row comes back with exactly the columns of :data:`EVENT_COLUMNS` (None where absent).
    """
    try:
        message = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise MessageDecodeError(f"message body is not JSON: {error}") from error
    if not isinstance(message, dict) or message.get("v") != MESSAGE_VERSION:
        raise MessageDecodeError(f"message is not an events message of version {MESSAGE_VERSION}")
    app_id, events = message.get("app_id"), message.get("events")
    if not isinstance(app_id, str) or not APP_ID_PATTERN.fullmatch(app_id) or not isinstance(events, list):
        raise MessageDecodeError("message lacks a valid 'app_id' or an 'events' list")
    rows = []
    for position, event in enumerate(events):
        if not isinstance(event, dict):
            raise MessageDecodeError(f"event {position} is not an object")
        row = _EMPTY_ROW.copy()
        for column, value in event.items():
            kind = _COLUMN_TYPES.get(column)
            if kind is None:
                raise MessageDecodeError(f"event {position} has an unknown column {column!r}")
            row[column] = _decode_value(column, kind, value)
        for required in ("event_id", "event_name", "event_time", "received_at"):
            if row[required] is None:
                raise MessageDecodeError(f"event {position} lacks {required!r}")
        rows.append(row)
    return app_id, rows


# --- sending ---------------------------------------------------------------------------------


class SqsSink:
    """Enqueues accepted rows; returns only once SQS has every message, else raises :class:`EnqueueError`.

    Entries that SQS reports as failed are sent again with exponential backoff and jitter,
    up to ``max_attempts`` sends in all; failures SQS blames on the sender are not retried.
    Errors of the whole call (throttling, network) are retried by botocore's own retry policy.
    """

    def __init__(
        self,
        client: Any,
        queue_url: str,
        *,
        max_attempts: int = 5,
        base_delay_seconds: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.max_attempts = max_attempts
        self.base_delay_seconds = base_delay_seconds
        self.sleep = sleep

    def write(self, app_id: str, rows: list[dict[str, Any]], encoded: list[bytes] | None = None) -> None:
        bodies = pack_messages(app_id, encoded if encoded is not None else (encode_row(row) for row in rows))
        for batch in plan_send_batches(bodies):
            self._send(batch)

    def _send(self, bodies: list[bytes]) -> None:
        pending = [body.decode("utf-8") for body in bodies]
        for attempt in range(1, self.max_attempts + 1):
            response = self.client.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(n), "MessageBody": body} for n, body in enumerate(pending)],
            )
            failed = response.get("Failed") or []
            if not failed:
                return
            reasons = sorted({f"{entry.get('Code')}: {entry.get('Message', '')}".strip() for entry in failed})
            if any(entry.get("SenderFault") for entry in failed):
                raise EnqueueError(f"SQS refused {len(failed)} message(s): {'; '.join(reasons)}")
            pending = [pending[int(entry["Id"])] for entry in failed]
            if attempt < self.max_attempts:
                delay = self.base_delay_seconds * 2 ** (attempt - 1)
                self.sleep(delay * (0.5 + random.random()))  # jitter spreads concurrent retries
        raise EnqueueError(
            f"{len(pending)} message(s) still failed after {self.max_attempts} attempts: {'; '.join(reasons)}"
        )
