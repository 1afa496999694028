"""The local server's journal: what a request leaves to store, durable before its ``202``.

``minidrama serve`` (on a local lake) appends each group of requests' outcomes (their accepted
rows and quarantine files) to the journal and syncs it before it answers; a background thread
then stores a second's worth of outcomes at a time as the lake's Parquet files (one per hour
partition) and quarantine files, and deletes the journal's segment. It is the local stand-in of
the deployed API's queue: as there, an acknowledged event is durable at once and in the lake's
files moments later. A server that stops (SIGTERM, Ctrl-C) stores everything first; one that is
killed stores what its journal holds when it starts again, before it serves.

A segment is a file ``{directory}/{number:016d}.journal`` of records, each: the payload's length
(8 bytes, little-endian), the CRC-32 of those 8 bytes and the payload (4 bytes), the payload. A
payload is a JSON header line ``{"parts": [[kind, name, length], ...]}`` and then the parts'
bytes one after another: ``rows`` (name: the app id) an Arrow IPC stream of accepted rows,
``quarantine`` (name: its key) a quarantine file. A record cut short, zero-filled or whose CRC
does not match ends its segment: at the end of a segment it was being written when the server
was killed, so it was never acknowledged; a segment with bytes after its last readable record is
kept aside as ``.damaged`` (and logged), not deleted, once what it could read is stored.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minidrama.lake import fsync_directory, make_directories

__all__ = ["Accepted", "FLUSH_SECONDS", "JOURNAL_DIRECTORY", "Journal", "read_segment"]

JOURNAL_DIRECTORY = ".journal"  # of a local lake: the segments of its server's journal
FLUSH_SECONDS = 1.0  # minidrama serve's default: the journal's outcomes stored in the lake each second

_HEADER = struct.Struct("<QI")  # payload length, CRC-32 of the length and the payload
_SUFFIX = ".journal"


@dataclass(frozen=True)
class Accepted:
    """What an events request resolved by the bulk path leaves to store: its accepted rows (an
    Arrow table) and its quarantine file (key, bytes)."""

    app_id: str
    table: Any
    quarantine: tuple[str, bytes] | None


def _record(outcomes: list[Accepted]) -> bytes:
    """One record of ``outcomes``: its header (length, CRC) and its payload, joined in one copy."""
    import pyarrow as pa

    parts: list[list[Any]] = []
    blobs: list[Any] = []  # bytes, and Arrow buffers (read in place)
    for outcome in outcomes:
        if outcome.table.num_rows:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, outcome.table.schema) as writer:
                writer.write_table(outcome.table)
            blob = sink.getvalue()
            parts.append(["rows", outcome.app_id, blob.size])
            blobs.append(blob)
        if outcome.quarantine:
            key, data = outcome.quarantine
            parts.append(["quarantine", key, len(data)])
            blobs.append(data)
    blobs.insert(0, json.dumps({"parts": parts}).encode() + b"\n")
    length = sum(memoryview(blob).nbytes for blob in blobs)
    return b"".join([_HEADER.pack(length, _crc(length, blobs)), *blobs])


def _decode(payload: bytes) -> list[Accepted]:
    import pyarrow as pa

    from minidrama.writer import EVENTS_SCHEMA

    end = payload.index(b"\n")
    parts = json.loads(payload[:end])["parts"]
    offset = end + 1
    outcomes = []
    for kind, name, length in parts:
        blob = payload[offset : offset + length]
        offset += length
        if kind == "rows":
            outcomes.append(Accepted(name, pa.ipc.open_stream(blob).read_all(), None))
        else:
            outcomes.append(Accepted("", EVENTS_SCHEMA.empty_table(), (name, blob)))
    return outcomes


def _crc(length: int, payload: list[Any]) -> int:
    """A record's CRC-32: of its length's 8 bytes and its payload, given in pieces (a damaged
    length is caught too)."""
    crc = zlib.crc32(struct.pack("<Q", length))
    for piece in payload:
        crc = zlib.crc32(piece, crc)
    return crc


def read_segment(path: Path) -> tuple[list[Accepted], bool]:
    """The outcomes a segment holds, up to its end or to a record cut short, zero-filled or
    damaged (what a kill or a power loss leaves at the end of the segment being written); and
    whether it ended before its last byte (a torn end, or damage to look at)."""
    data = path.read_bytes()
    outcomes: list[Accepted] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        payload = data[start : start + length]
        if length == 0 or len(payload) < length or _crc(length, [payload]) != crc:
            break
        try:
            outcomes += _decode(payload)
        except Exception:  # noqa: BLE001 (any decoding error: a damaged record ends the segment)
            break
        offset = start + length
    return outcomes, offset < len(data)


class Journal:
    """The segments of one directory; :meth:`append` writes to the open one, :meth:`rotate`
    closes it (the next append opens a new one). One writer thread; the flusher only removes
    segments it was handed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        make_directories(directory)  # (each new directory's entry synced)
        self._descriptor: int | None = None
        self._path: Path | None = None
        self._closed: list[Path] = []  # closed since the last rotate (by a failed append)

    def segments(self) -> list[Path]:
        """The segments on disk, oldest first."""
        return sorted(self.directory.glob("*" + _SUFFIX))

    def _open(self) -> None:
        existing = self.segments()
        number = int(existing[-1].stem) + 1 if existing else 1
        path = self.directory / f"{number:016d}{_SUFFIX}"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fsync_directory(self.directory)
        except BaseException:
            os.close(descriptor)
            with suppress(OSError):
                path.unlink()
            raise
        self._descriptor, self._path = descriptor, path

    def append(self, outcomes: list[Accepted]) -> None:
        """Write one record of ``outcomes`` and sync it; raises (and nothing may be acknowledged)
        when it cannot. After a failure the record is cut off again and the segment closed."""
        record = _record(outcomes)
        if self._descriptor is None:
            self._open()
        assert self._descriptor is not None
        descriptor = self._descriptor
        start = os.lseek(descriptor, 0, os.SEEK_END)
        try:
            view = memoryview(record)
            while view:
                written = os.write(descriptor, view)
                view = view[written:]
            os.fdatasync(descriptor)
        except BaseException:
            with suppress(OSError):  # a record answered 503 is not replayed after a crash
                os.ftruncate(descriptor, start)
            self._close()
            raise

    def _close(self) -> None:
        descriptor, path = self._descriptor, self._path
        self._descriptor = self._path = None
        if descriptor is not None and path is not None:
            with suppress(OSError):
                os.close(descriptor)
            self._closed.append(path)

    def rotate(self) -> list[Path]:
        """Close the open segment; returns the segments closed since the last rotate (it, and
        any a failed append closed), whose outcomes the caller is to store."""
        self._close()
        closed, self._closed = self._closed, []
        return closed

    def remove(self, path: Path) -> None:
        """Delete a segment whose outcomes are stored in the lake."""
        path.unlink(missing_ok=True)
        fsync_directory(self.directory)

    def set_aside(self, path: Path) -> Path:
        """Keep a segment that holds bytes after its last readable record under another name
        (``.damaged``), for a person to look at, instead of deleting it."""
        target = path.with_suffix(".damaged")
        path.replace(target)
        fsync_directory(self.directory)
        return target
