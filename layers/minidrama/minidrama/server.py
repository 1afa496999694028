"""``minidrama serve``: the HTTP API on a local lake, through the same router as the deployed functions.

Each HTTP request becomes the API Gateway proxy event that the ingest and query functions
receive (:mod:`minidrama.gateway`) and is resolved by :func:`minidrama.router.build_router`, so
the local and the deployed contract are one code path: the events route, the read API and the
dashboard (read tokens are signed with the lake's ``config/read-token-secret``). Accepted events
are durable before the ``202``: synced in the server's journal (:mod:`minidrama.journal`) and in
the lake's Parquet files within ``flush_seconds``, or, without a journal, in the lake's Parquet
files (temporary file, fsync, rename).

The server is asyncio with h11, a strict HTTP/1.1 parser. With the defaults of :class:`Limits`:

- a connection with no request begun (new, or kept alive after an answer) is closed after
  ``idle_timeout`` (5 s); a request must arrive whole, head and body, within ``request_timeout``
  (15 s) of its first byte, else ``408``; the client must take the answer within ``write_timeout``.
- at most ``max_connections`` (256) are open; one more is answered ``503`` and closed.
- ``413`` as soon as a ``Content-Length`` over 1 MiB is read, without reading the body (a chunked
  body is read to 1 MiB and one byte); ``400`` for a body shorter than its ``Content-Length``
  (nothing is stored), for two ``Content-Length`` headers or one with ``Transfer-Encoding``, and
  for anything else h11 refuses; ``501`` for a transfer coding other than ``chunked``;
  ``414``/``431`` when the request line alone / the request line and headers exceed
  ``max_head_bytes`` (16 KiB). Any method reaches the router: a method other than POST on the
  events path is a ``405`` (TRACE, PROPFIND, QUERY, ... alike), any path it has not a ``404``.
- every answer is JSON in the contract's error shape, or the router's own answer.
- connections are read and written concurrently on the event loop; requests are resolved by
  ``workers`` processes (``minidrama serve`` starts one per core), each with its own router,
  one request at a time (Powertools keeps the request being resolved on its router class); with
  ``workers=1`` (tests, :func:`serve_in_background`) by one thread of the server's process. Events
  are checked by the bulk path (:func:`minidrama.ingestion.ingest_body`) and their rows handed
  to the server's writer thread (group commit: one journal record, or one file per partition,
  for all the requests that queued meanwhile, from every worker); each answer waits until its
  rows are durable. A worker
  process that dies is replaced; its request is answered ``500`` (a retry is counted once).
- SIGTERM or Ctrl-C: stop accepting, close idle connections, finish the requests in flight
  (answered with ``Connection: close``), store what the journal holds, then return.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import h11
from aws_lambda_powertools.utilities.typing import LambdaContext

from minidrama.api import AppDirectory
from minidrama.gateway import (
    HttpAnswer,
    HttpRequest,
    error_answer,
    framing_error,
    http_answer,
    oversized_head,
    proxy_event,
)
from minidrama.ingestion import MAX_BODY_BYTES
from minidrama.journal import FLUSH_SECONDS, JOURNAL_DIRECTORY, Journal, read_segment
from minidrama.journal import Accepted as _Accepted
from minidrama.lake import LocalStorage, Storage, make_directories
from minidrama.reading import Reader
from minidrama.router import build_router
from minidrama.tokens import LakeSecret
from minidrama.writer import PARQUET_CONTENT_TYPE, encode_table, write_events

__all__ = [
    "JOURNAL_DIRECTORY",
    "JournalInUseError",
    "Limits",
    "LocalServer",
    "lock_journal",
    "recover_journal",
    "serve",
    "serve_in_background",
]

logger = logging.getLogger(__name__)

_READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """How long and how much the server waits for and takes from clients (seconds, bytes)."""

    max_connections: int = 256
    idle_timeout: float = 5.0
    request_timeout: float = 15.0
    write_timeout: float = 15.0
    max_head_bytes: int = 16 * 1024
    max_body_bytes: int = MAX_BODY_BYTES
    # After refusing a body that is still coming, keep reading (and dropping) it this long so that
    # closing does not reset the connection before the client has read the answer.
    linger_seconds: float = 2.0


class _GroupWriter:
    """Writes the outcomes of concurrent requests together (group commit): one writer thread takes
    every request queued while it wrote the last group, makes their outcomes durable, then
    completes each request's future. A request's answer waits for its future, so nothing is
    answered before it is durable; meanwhile the routers check the next requests.

    Without a journal, durable means stored: the group's rows as one Parquet file per app and hour
    partition, and their quarantine files, each directory synced once. With one
    (:mod:`minidrama.journal`), durable means one synced record of the journal: a flusher thread
    stores the outcomes of up to ``flush_seconds`` (or :data:`FLUSH_ROWS` rows) at a time as
    files, then deletes their segments; what a killed server's journal holds is stored when the
    next one starts (:func:`recover_journal`), and :meth:`close` stores everything."""

    FLUSH_ROWS = 200_000

    def __init__(self, storage: Storage, journal: Journal | None = None, flush_seconds: float = 1.0) -> None:
        self.storage = storage
        self.journal = journal
        self.flush_seconds = flush_seconds
        self._queue: queue.SimpleQueue[tuple[_Accepted, Future[None]] | None] = queue.SimpleQueue()
        self._flushes: queue.SimpleQueue[tuple[list[Path], list[_Accepted]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="minidrama-writer", daemon=True)
        self._flusher = threading.Thread(target=self._flush_run, name="minidrama-flusher", daemon=True)
        self._thread.start()
        if journal is not None:
            self._flusher.start()

    def submit(self, accepted: _Accepted) -> Future[None]:
        done: Future[None] = Future()
        self._queue.put((accepted, done))
        return done

    def close(self) -> None:
        """Write what is queued, store what the journal holds, then stop."""
        self._queue.put(None)
        self._thread.join()
        if self.journal is not None:
            self._flushes.put(None)
            self._flusher.join()

    def _run(self) -> None:
        pending: list[_Accepted] = []  # in the journal, not yet handed to the flusher
        pending_rows, due = 0, 0.0
        stopping = False
        while not stopping:
            try:
                timeout = max(due - time.monotonic(), 0.0) if pending else None
                group = [self._queue.get(timeout=timeout)]
            except queue.Empty:
                group = []
            with suppress(queue.Empty):
                while True:
                    group.append(self._queue.get_nowait())
            stopping = None in group
            queued = [item for item in group if item is not None]
            if queued:
                outcomes = [accepted for accepted, _done in queued]
                try:
                    if self.journal is None:
                        self.storage.put_many(_files(outcomes))
                    else:
                        self.journal.append(outcomes)
                except Exception as error:  # each request's answer becomes a 503: nothing is lost
                    for _accepted, done in queued:
                        done.set_exception(error)
                else:
                    for _accepted, done in queued:
                        done.set_result(None)
                    if self.journal is not None:
                        if not pending:
                            due = time.monotonic() + self.flush_seconds
                        pending += outcomes
                        pending_rows += sum(outcome.table.num_rows for outcome in outcomes)
            flush = stopping or pending_rows >= self.FLUSH_ROWS or time.monotonic() >= due
            if self.journal is not None and pending and flush:
                self._flushes.put((self.journal.rotate(), pending))
                pending, pending_rows = [], 0

    def _flush_run(self) -> None:
        assert self.journal is not None
        while (item := self._flushes.get()) is not None:
            segments, outcomes = item
            for attempt in range(1, 6):
                try:
                    self.storage.put_many(_files(outcomes))
                    for segment in segments:
                        self.journal.remove(segment)
                except Exception:  # durable in the journal meanwhile
                    logger.exception(
                        "storing the journal's events in the lake failed (attempt %d of 5)", attempt
                    )
                    time.sleep(attempt)
                    continue
                break
            else:  # left in the journal: the next start of the server stores them
                logger.error("the journal keeps %s until the server starts again", [str(s) for s in segments])


def recover_journal(storage: LocalStorage) -> int:
    """Store what the journal of a server that did not stop cleanly holds in the lake's files,
    then delete it (a segment with bytes after its last readable record is kept aside as
    ``.damaged``); returns how many rows. The caller holds the journal's lock (:func:`lock_journal`)."""
    directory = storage.root / JOURNAL_DIRECTORY
    if not directory.is_dir():
        return 0
    journal = Journal(directory)
    rows = 0
    for segment in journal.segments():
        outcomes, rest = read_segment(segment)
        storage.put_many(_files(outcomes))
        if rest:
            kept = journal.set_aside(segment)
            logger.warning(
                "the journal segment %s ends with bytes it could not read (a record cut short when "
                "the server was killed, or damage); what it held before them is stored; kept as %s",
                segment,
                kept,
            )
        else:
            journal.remove(segment)
        rows += sum(outcome.table.num_rows for outcome in outcomes)
    return rows


class JournalInUseError(RuntimeError):
    """Another ``minidrama serve`` holds the lake's journal."""


def lock_journal(storage: LocalStorage) -> int | None:
    """An exclusive lock on the lake's journal (a descriptor to keep open while serving), or None
    when another server holds it."""
    import fcntl

    directory = storage.root / JOURNAL_DIRECTORY
    make_directories(directory)
    descriptor = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


def _files(outcomes: list[_Accepted]) -> list[tuple[str, bytes, str | None]]:
    import pyarrow as pa

    files: list[tuple[str, bytes, str | None]] = []
    for app_id in dict.fromkeys(outcome.app_id for outcome in outcomes):
        tables = [
            outcome.table for outcome in outcomes if outcome.app_id == app_id and outcome.table.num_rows
        ]
        if tables:
            files += [
                (key, data, PARQUET_CONTENT_TYPE)
                for key, data in encode_table(app_id, pa.concat_tables(tables))
            ]
    files += [(*outcome.quarantine, "application/x-ndjson") for outcome in outcomes if outcome.quarantine]
    return files


class _LakeSink:
    """Accepted rows to Parquet in the lake. The per-event path (:meth:`write`) is durable on
    return; the bulk path's tables (:meth:`write_table`) are handed over (:meth:`take_accepted`)
    to the server's group writer."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._accepted: _Accepted | None = None  # of the request being resolved (one at a time)

    def write(self, app_id: str, rows: list[dict[str, Any]], encoded: list[bytes] | None = None) -> None:
        write_events(self.storage, app_id, rows)

    def write_table(self, app_id: str, table: Any, quarantine: tuple[str, bytes] | None) -> None:
        self._accepted = _Accepted(app_id, table, quarantine)

    def take_accepted(self) -> _Accepted | None:
        accepted, self._accepted = self._accepted, None
        return accepted


class _Resolver:
    """The router of one process, with its lake sink: resolves one request at a time (Powertools
    keeps the request being resolved on its router class)."""

    def __init__(self, storage: Storage) -> None:
        # Local reads of config/apps.json are cheap: re-read often, so `apps add` works at once.
        directory = AppDirectory(storage, ttl_seconds=2.0, recheck_seconds=0.0)
        reader = Reader(storage, directory, LakeSecret(storage))
        self.sink = _LakeSink(storage)
        self.router = build_router(directory=directory, storage=storage, sink=self.sink, reader=reader)

    def resolve(self, event: dict[str, Any]) -> tuple[HttpAnswer, _Accepted | None]:
        """The router's answer, and the rows it leaves to store (an events request's)."""
        try:
            # The routes read no Lambda context; Powertools' type stands in for it.
            answer = http_answer(self.router.resolve(event, LambdaContext()))
        except Exception:
            logger.exception("resolving a request failed")
            self.sink.take_accepted()  # a failed request stores nothing
            return _failed_answer(), None
        return answer, self.sink.take_accepted()


def _failed_answer() -> HttpAnswer:
    return error_answer(500, "internal_error", "the server failed; retry the same request later")


_WORKER: _Resolver | None = None  # in a worker process of a server with several


def _start_worker(storage: Storage) -> None:
    """A worker process's start: its own router; Ctrl-C is the server's to handle (it finishes
    the requests in flight, then stops the workers)."""
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    _WORKER = _Resolver(storage)


def _ready() -> None:
    """A no-op a worker process runs once started."""


def _resolve_in_worker(event: dict[str, Any]) -> tuple[HttpAnswer, _Accepted | None]:
    assert _WORKER is not None, "not a worker process"
    return _WORKER.resolve(event)


class _Refused(Exception):
    """A request answered before it reached the router."""

    def __init__(self, answer: HttpAnswer) -> None:
        super().__init__(answer.status)
        self.answer = answer


class _Gone(Exception):
    """The connection ends without an answer: the client closed it or stayed idle too long."""


@dataclass
class _Exchange:
    """One request on a connection, as far as it got."""

    method: str = "-"
    target: str = "-"
    deadline: float | None = None


def _discard_received_body(conn: h11.Connection) -> None:
    """Drop the body of a refused request if it has all arrived already, so the connection can go on."""
    with suppress(h11.RemoteProtocolError):
        while conn.their_state is h11.SEND_BODY:
            if conn.next_event() in (h11.NEED_DATA, h11.PAUSED):
                return


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class LocalServer:
    """The HTTP API (events, read API, dashboard) on ``storage``; :meth:`run` serves until :meth:`stop`."""

    def __init__(
        self,
        storage: Storage,
        limits: Limits | None = None,
        workers: int = 1,
        flush_seconds: float | None = None,
    ) -> None:
        self.storage = storage
        self.limits = limits or Limits()
        self.workers = workers
        # The journal (minidrama.journal) on a local lake when flush_seconds is given (and not
        # 0); else each group of requests is stored in the lake's files before its answers.
        self._lock: int | None = None
        journal: Journal | None = None
        recovered = 0
        if isinstance(storage, LocalStorage):
            directory = storage.root / JOURNAL_DIRECTORY
            if flush_seconds:  # journaled: the journal is this server's while it runs
                self._lock = lock_journal(storage)
                if self._lock is None:
                    raise JournalInUseError(
                        f"another minidrama serve is running on the lake {storage.uri} (its journal "
                        "is locked): stop it, or serve another lake"
                    )
                journal = Journal(directory)
            elif any(directory.glob("*.journal")):  # left by a journaled server; unless it runs
                self._lock = lock_journal(storage)
            if self._lock is not None:
                # what a journaled server that was killed left is stored first, whatever this one does
                recovered = recover_journal(storage)
                if journal is None:  # (the lock is only needed to journal)
                    os.close(self._lock)
                    self._lock = None
        self._writer = _GroupWriter(storage, journal, flush_seconds or 0.0)
        if recovered:
            logger.info(
                "stored %d events the journal held from the last run (it did not stop cleanly)", recovered
            )
        if workers > 1:
            self._resolver: _Resolver | None = None
            self._executor: Executor = self._worker_pool()
        else:
            self._resolver = _Resolver(storage)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minidrama-router")
        self._connections: set[asyncio.Task[None]] = set()
        self._idle: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._stop_requested: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _worker_pool(self) -> ProcessPoolExecutor:
        import multiprocessing

        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["minidrama.server"])
        return ProcessPoolExecutor(
            max_workers=self.workers, mp_context=context, initializer=_start_worker, initargs=(self.storage,)
        )

    # --- lifecycle -----------------------------------------------------------------------------

    async def run(
        self,
        host: str,
        port: int,
        on_listening: Callable[[str, int], None],
        *,
        handle_signals: bool = False,
    ) -> None:
        """Listen on ``host:port`` (port 0: any free one), tell ``on_listening``, serve until stopped."""
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        listener = await asyncio.start_server(
            self._connection, host, port, backlog=self.limits.max_connections
        )
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(signum, self.stop)
        if self.workers > 1:  # each worker process started (imports done) before the first request
            await asyncio.gather(
                *[self._loop.run_in_executor(self._executor, _ready) for _ in range(self.workers)]
            )
        bound = listener.sockets[0].getsockname()
        on_listening(str(bound[0]), int(bound[1]))
        try:
            await self._stop_requested.wait()
        finally:
            listener.close()
            for task in list(self._idle):
                task.cancel()
            if self._connections:
                grace = self.limits.request_timeout + self.limits.write_timeout + 10
                await asyncio.wait(set(self._connections), timeout=grace)
            self._executor.shutdown(wait=True)
            self._writer.close()
            if self._lock is not None:
                os.close(self._lock)  # (releases the journal's lock)
                self._lock = None

    def stop(self) -> None:
        """Begin a graceful stop; call from the server's event loop (:meth:`stop_threadsafe` elsewhere)."""
        self._stopping = True
        if self._stop_requested is not None:
            self._stop_requested.set()

    def stop_threadsafe(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.stop)

    # --- one connection ------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= self.limits.max_connections or self._stopping:
            await self._refuse_connection(writer)
            return
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        source_ip = str(peer[0]) if isinstance(peer, tuple) else "127.0.0.1"
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_head_bytes)
        linger = False
        try:
            while True:
                keep_alive, linger = await self._exchange(conn, reader, writer, source_ip)
                if not keep_alive:
                    break
                conn.start_next_cycle()
        except (_Gone, ConnectionError, TimeoutError, asyncio.CancelledError):
            pass  # the client went away, stayed idle, did not read its answer, or the server stops
        except Exception:
            logger.exception("a connection failed")
        finally:
            self._connections.discard(task)
            await self._close(reader, writer, linger=linger)

    async def _exchange(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, source_ip: str
    ) -> tuple[bool, bool]:
        """Read one request and answer it; returns (keep the connection, linger before closing)."""
        started = time.monotonic()
        exchange = _Exchange()
        try:
            request, head = await self._read_head(conn, reader, exchange)
            refusal = self._refusal(request, head)
            if refusal is not None:
                raise _Refused(refusal)
            body = await self._read_body(conn, reader, writer, exchange)
            answer = await self._resolve(request, body, source_ip)
        except _Refused as refused:
            answer = refused.answer
            _discard_received_body(conn)
        body_unread = conn.their_state is not h11.DONE
        await self._send(conn, writer, answer, exchange.method, close=body_unread or self._stopping)
        logger.info(
            '%s "%s %s" %d %.1f ms',
            source_ip,
            exchange.method,
            exchange.target[:200],
            answer.status,
            (time.monotonic() - started) * 1000,
        )
        keep_alive = conn.our_state is h11.DONE and conn.their_state is h11.DONE
        return keep_alive, body_unread

    async def _read(self, reader: asyncio.StreamReader, timeout: float) -> bytes:
        async with asyncio.timeout(max(timeout, 0.0)):
            return await reader.read(_READ_SIZE)

    async def _read_head(
        self, conn: h11.Connection, reader: asyncio.StreamReader, exchange: _Exchange
    ) -> tuple[h11.Request, bytes]:
        loop = asyncio.get_running_loop()
        head = bytearray(conn.trailing_data[0])  # a pipelined request already received
        if head:
            exchange.deadline = loop.time() + self.limits.request_timeout
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as error:
                raise _Refused(self._protocol_error(error, bytes(head))) from error
            if isinstance(event, h11.Request):
                exchange.method = event.method.decode("ascii", "replace")
                exchange.target = event.target.decode("latin-1")
                return event, bytes(head)
            if isinstance(event, h11.ConnectionClosed):
                raise _Gone
            if exchange.deadline is None:
                data = await self._wait_for_request(reader)
                exchange.deadline = loop.time() + self.limits.request_timeout
            else:
                try:
                    data = await self._read(reader, exchange.deadline - loop.time())
                except TimeoutError:
                    raise _Refused(self._timed_out("request line and headers")) from None
            if len(head) <= self.limits.max_head_bytes:
                head += data
            conn.receive_data(data)

    async def _wait_for_request(self, reader: asyncio.StreamReader) -> bytes:
        """The first bytes of a request, or :class:`_Gone` after ``idle_timeout`` (or a stop) with none."""
        task = asyncio.current_task()
        assert task is not None
        if self._stopping:
            raise _Gone
        self._idle.add(task)
        try:
            data = await self._read(reader, self.limits.idle_timeout)
        except TimeoutError:
            raise _Gone from None
        finally:
            self._idle.discard(task)
        if not data:
            raise _Gone
        return data

    def _refusal(self, request: h11.Request, head: bytes) -> HttpAnswer | None:
        """The answer to a request that must not reach the router, decided from its head alone."""
        # h11 limits only a head that arrives in pieces; one read can bring a whole large head.
        refused = oversized_head(head, self.limits.max_head_bytes) or framing_error(head)
        if refused is not None:
            return refused
        length = next((value for name, value in request.headers if name == b"content-length"), None)
        if length is not None and int(length) > self.limits.max_body_bytes:
            return error_answer(
                413,
                "payload_too_large",
                f"request body of {int(length)} bytes is over the limit of "
                f"{self.limits.max_body_bytes} bytes (1 MiB): send the events in smaller batches",
            )
        return None

    async def _read_body(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        exchange: _Exchange,
    ) -> bytes:
        loop = asyncio.get_running_loop()
        assert exchange.deadline is not None
        if conn.they_are_waiting_for_100_continue:
            await self._write(
                writer, conn.send(h11.InformationalResponse(status_code=100, headers=[], reason="Continue"))
            )
        body = bytearray()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as error:
                # Typically a client that closed before sending all of its Content-Length.
                raise _Refused(
                    error_answer(400, "malformed_request", f"the request body is incomplete: {error}")
                ) from error
            if isinstance(event, h11.EndOfMessage):
                return bytes(body)
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.limits.max_body_bytes:
                    raise _Refused(
                        error_answer(
                            413,
                            "payload_too_large",
                            f"request body is over the limit of {self.limits.max_body_bytes} bytes (1 MiB): "
                            "send the events in smaller batches",
                        )
                    )
                continue
            try:
                data = await self._read(reader, exchange.deadline - loop.time())
            except TimeoutError:
                raise _Refused(self._timed_out("request body")) from None
            conn.receive_data(data)  # b"" at the end of the stream: h11 then says what is missing

    async def _resolve(self, request: h11.Request, body: bytes, source_ip: str) -> HttpAnswer:
        http_request = HttpRequest(
            method=request.method.decode("ascii"),
            target=request.target.decode("latin-1"),
            headers=[
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in request.headers.raw_items()
            ],
            body=body,
            source_ip=source_ip,
        )
        event = proxy_event(http_request, request_id=str(uuid.uuid4()), received_at=datetime.now(UTC))
        executor = self._executor
        resolve = _resolve_in_worker if self._resolver is None else self._resolver.resolve
        try:
            answer, accepted = await asyncio.get_running_loop().run_in_executor(executor, resolve, event)
        except BrokenProcessPool:
            # a worker process died (killed, out of memory): a new pool serves the next requests;
            # the client retries, and a retried event is counted once (SPEC 4)
            logger.exception("a worker process of the server died")
            if self._executor is executor:
                self._executor = self._worker_pool()
            return _failed_answer()
        if accepted is not None:
            try:
                await asyncio.wrap_future(self._writer.submit(accepted))
            except Exception:
                logger.exception("storing a batch failed")
                return error_answer(
                    503,
                    "unavailable",
                    "the events could not be stored; retry the same request later",
                    {"Retry-After": "1"},
                )
        return answer

    # --- answers -------------------------------------------------------------------------------

    def _protocol_error(self, error: h11.RemoteProtocolError, head: bytes) -> HttpAnswer:
        if error.error_status_hint == 431:  # h11's receive buffer filled up before the head ended
            oversized = oversized_head(head, self.limits.max_head_bytes)
            if oversized is not None:
                return oversized
        if error.error_status_hint == 501:
            return error_answer(501, "not_implemented", f"{error}; send the body with Content-Length")
        return error_answer(400, "malformed_request", f"the request is not valid HTTP/1.1: {error}")

    def _timed_out(self, part: str) -> HttpAnswer:
        return error_answer(
            408,
            "request_timeout",
            f"the {part} did not arrive within {self.limits.request_timeout:g} s of the request's first byte",
        )

    async def _send(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        answer: HttpAnswer,
        method: str,
        *,
        close: bool,
    ) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        framing = {"content-length", "transfer-encoding", "connection"}
        headers = [(name, value) for name, value in answer.headers if name.lower() not in framing]
        headers.append(("Content-Length", str(len(answer.body))))
        if close:
            headers.append(("Connection", "close"))
        try:
            reason = HTTPStatus(answer.status).phrase
        except ValueError:
            reason = ""
        data = conn.send(h11.Response(status_code=answer.status, headers=headers, reason=reason))
        if method != "HEAD" and answer.body:
            data += conn.send(h11.Data(data=answer.body))
        data += conn.send(h11.EndOfMessage())
        await self._write(writer, data)

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        async with asyncio.timeout(self.limits.write_timeout):
            await writer.drain()

    async def _refuse_connection(self, writer: asyncio.StreamWriter) -> None:
        """Answer 503 to a connection over the limit, without reading from it, and close it."""
        answer = error_answer(
            503,
            "unavailable",
            f"the server has {self.limits.max_connections} connections open; retry in a moment",
            {"Retry-After": "1"},
        )
        with suppress(Exception):
            await self._send(h11.Connection(h11.SERVER), writer, answer, "-", close=True)
            if writer.can_write_eof():
                writer.write_eof()
        writer.close()

    async def _close(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, linger: bool
    ) -> None:
        with suppress(Exception):
            if linger and not reader.at_eof():
                if writer.can_write_eof():
                    writer.write_eof()
                async with asyncio.timeout(self.limits.linger_seconds):
                    while await reader.read(_READ_SIZE):
                        pass
        writer.close()
        with suppress(Exception):
            async with asyncio.timeout(1.0):
                await writer.wait_closed()


def serve(
    storage: Storage,
    host: str = "127.0.0.1",
    port: int = 8080,
    limits: Limits | None = None,
    workers: int = 1,
    flush_seconds: float | None = FLUSH_SECONDS,
) -> None:
    """Serve until SIGTERM or Ctrl-C with ``workers`` processes resolving requests (1: a thread of
    this one); prints the URL it listens on (the real port when ``port`` is 0). Accepted events
    are journaled and stored in the lake's files every ``flush_seconds`` (None: stored before
    each answer)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    def listening(bound_host: str, bound_port: int) -> None:
        print(
            f"minidrama: listening on {_url(bound_host, bound_port)}/ "
            f"(POST /v1/apps/{{app_id}}/events, GET /v1/apps/{{app_id}}/metrics and /dashboard)"
            f" with the lake {storage.uri}" + (f", {workers} worker processes" if workers > 1 else ""),
            flush=True,
        )

    server = LocalServer(storage, limits, workers, flush_seconds)
    asyncio.run(server.run(host, port, listening, handle_signals=True))


@contextmanager
def serve_in_background(
    storage: Storage,
    host: str = "127.0.0.1",
    port: int = 0,
    limits: Limits | None = None,
    workers: int = 1,
    flush_seconds: float | None = None,
) -> Iterator[str]:
    """The server on a thread of this process for the ``with`` block (tests, embedding); yields its
    URL. With ``workers`` > 1, requests are resolved by that many processes (``storage`` must pickle).
    Accepted events are stored in the lake's files before each answer, unless ``flush_seconds``
    is given (the journal, as ``minidrama serve`` runs)."""
    server = LocalServer(storage, limits, workers, flush_seconds)
    listening = threading.Event()
    bound: list[str] = []
    failure: list[BaseException] = []

    def listen(bound_host: str, bound_port: int) -> None:
        bound.append(_url(bound_host, bound_port))
        listening.set()

    def run() -> None:
        try:
            asyncio.run(server.run(host, port, listen))
        except BaseException as error:  # reported to the caller below
            failure.append(error)
        finally:
            listening.set()

    thread = threading.Thread(target=run, name="minidrama-serve", daemon=True)
    thread.start()
    listening.wait()
    if not bound:
        raise RuntimeError(f"the server did not start: {failure[0] if failure else 'unknown'}")
    try:
        yield bound[0]
    finally:
        server.stop_threadsafe()
        thread.join(timeout=60)
