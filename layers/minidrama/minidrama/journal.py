"""The local server's journal: what a request leaves to store, durable before its ``202``.

``minidrama serve`` (on a local lake) appends each group of requests' outcomes (their accepted
rows and quarantine files) to the journal and syncs it before it answers; a background thread
then stores a second's worth of outcomes at a time as the lake's Parquet files (one per hour
partition) and quarantine files, and deletes the journal's segment. It is the local stand-in of
the deployed API's queue: as there, an acknowledged event is durable at once and in the lake's
files moments later. A server that stops (SIGTERM, Ctrl-C) stores everything first; one that is
killed stores what its journal holds when it starts again, before it serves.

A segment is a file ``{directory}/{number:016d}.journal`` of records, each: the payload's length
(8 bytes, little-endian), its CRC-32 (4 bytes), the payload. A payload is a JSON header line
``{"parts": [[kind, name, length], ...]}`` and then the parts' bytes one after another: ``rows``
(name: the app id) an Arrow IPC stream of accepted rows, ``quarantine`` (name: its key) a
quarantine file. A record cut short, or whose CRC does not match, ends its segment: it was being
written when the server was killed, so it was never acknowledged.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from minidrama.lake import fsync_directory

__all__ = ["Accepted", "JOURNAL_DIRECTORY", "Journal", "read_segment"]

JOURNAL_DIRECTORY = ".journal"  # of a local lake: the segments of its server's journal

_HEADER = struct.Struct("<QI")  # payload length, CRC-32 of the payload
_SUFFIX = ".journal"


@dataclass(frozen=True)
class Accepted:
    """What an events request resolved by the bulk path leaves to store: its accepted rows (an
    Arrow table) and its quarantine file (key, bytes)."""

    app_id: str
    table: Any
    quarantine: tuple[str, bytes] | None


def _encode(outcomes: list[Accepted]) -> bytes:
    import pyarrow as pa

    parts: list[list[Any]] = []
    blobs: list[bytes] = []
    for outcome in outcomes:
        if outcome.table.num_rows:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, outcome.table.schema) as writer:
                writer.write_table(outcome.table)
            blob = sink.getvalue().to_pybytes()
            parts.append(["rows", outcome.app_id, len(blob)])
            blobs.append(blob)
        if outcome.quarantine:
            key, data = outcome.quarantine
            parts.append(["quarantine", key, len(data)])
            blobs.append(data)
    header = json.dumps({"parts": parts}).encode() + b"\n"
    return header + b"".join(blobs)


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


def read_segment(path: Path) -> list[Accepted]:
    """The outcomes a segment holds, up to its end or to a record cut short or damaged."""
    data = path.read_bytes()
    outcomes: list[Accepted] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        payload = data[offset + _HEADER.size : offset + _HEADER.size + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            break
        outcomes += _decode(payload)
        offset += _HEADER.size + length
    return outcomes


class Journal:
    """The segments of one directory; :meth:`append` writes to the open one, :meth:`rotate`
    closes it (the next append opens a new one). One writer thread."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._closed: list[Path] = []  # closed since the last rotate (by a failed append)

    def segments(self) -> list[Path]:
        """The segments on disk, oldest first."""
        return sorted(self.directory.glob("*" + _SUFFIX))

    def append(self, outcomes: list[Accepted]) -> None:
        """Write one record of ``outcomes`` and sync it; raises (and nothing may be acknowledged)
        when it cannot. After a failure the segment is closed: a record cut short ends it."""
        payload = _encode(outcomes)
        if self._file is None:
            existing = self.segments()
            number = int(existing[-1].stem) + 1 if existing else 1
            self._path = self.directory / f"{number:016d}{_SUFFIX}"
            self._file = self._path.open("xb")  # noqa: SIM115 (kept open across appends)
            fsync_directory(self.directory)
        start = self._file.tell()
        try:
            self._file.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
            self._file.flush()
            os.fdatasync(self._file.fileno())
        except BaseException:
            with suppress(OSError):  # a record answered 503 is not replayed after a crash
                self._file.truncate(start)
            self._close()
            raise

    def _close(self) -> None:
        if self._file is not None and self._path is not None:
            self._file.close()
            self._closed.append(self._path)
        self._path = self._file = None

    def rotate(self) -> list[Path]:
        """Close the open segment; returns the segments closed since the last rotate (it, and
        any a failed append closed), whose outcomes the caller is to store."""
        self._close()
        closed, self._closed = self._closed, []
        return closed

    def remove(self, path: Path) -> None:
        """Delete a segment whose outcomes are stored in the lake."""
        path.unlink()
        fsync_directory(self.directory)
