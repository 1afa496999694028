"""``minidrama serve``: the ingestion HTTP API on a local lake, same contract as API Gateway.

``POST /v1/apps/{app_id}/events`` is answered by :func:`minidrama.api.handle_post_events`;
accepted events go straight to Parquet files in the lake (written to a temporary file, fsync'd
and renamed into place) before the ``202``. Other paths answer a JSON ``404``, other methods
on the events path a JSON ``405``. Each request runs in its own thread; on Ctrl-C or SIGTERM
the server stops accepting and lets the requests in flight finish.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from minidrama.api import ApiResponse, AppDirectory, error_response, handle_post_events
from minidrama.ingestion import MAX_BODY_BYTES
from minidrama.lake import Storage
from minidrama.writer import ParquetSink

__all__ = ["make_server", "serve"]

_EVENTS_PATH = re.compile(r"^/v1/apps/(?P<app_id>[^/?#]+)/events/?(?:\?.*)?$")


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # let requests in flight finish their writes on shutdown
    block_on_close = True

    def __init__(self, address: tuple[str, int], storage: Storage) -> None:
        super().__init__(address, _Handler)
        self.storage = storage
        # Local reads of config/apps.json are cheap: re-read often, so `apps add` works at once.
        self.directory = AppDirectory(storage, ttl_seconds=2.0, recheck_seconds=0.0)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "minidrama"

    def do_POST(self) -> None:
        match = _EVENTS_PATH.match(self.path)
        if match is None:
            self._drain_and_answer(_not_found(self.path))
            return
        body = self._read_body()
        try:
            response = handle_post_events(
                match["app_id"],
                dict(self.headers.items()),
                body,
                directory=self.server.directory,
                storage=self.server.storage,
                sink=ParquetSink(self.server.storage),
            )
        except Exception:  # a bug, not a client error: answer JSON, keep serving, show the traceback
            traceback.print_exc()
            response = error_response(500, "internal_error", "the server failed; retry the same request")
        self._answer(response)

    def _other_method(self) -> None:
        if _EVENTS_PATH.match(self.path) is None:
            self._drain_and_answer(_not_found(self.path))
            return
        self._drain_and_answer(
            error_response(
                405, "method_not_allowed", f"{self.command} is not allowed here; use POST", {"Allow": "POST"}
            )
        )

    do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _other_method

    def _read_body(self) -> bytes:
        """The body, read up to one byte over the limit (enough for the API to answer 413)."""
        limit = MAX_BODY_BYTES + 1
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return b""
        if length > limit:
            self.close_connection = True  # the rest stays unread: this connection cannot be reused
        return self.rfile.read(min(length, limit)) if length > 0 else b""

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                self.close_connection = True
                return b""
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(parts)
            if total + size > limit:
                parts.append(self.rfile.read(limit - total))
                self.close_connection = True
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)  # the CRLF after each chunk
            total += size

    def _drain_and_answer(self, response: ApiResponse) -> None:
        # A body we will not read would be taken for the next request on a kept-alive connection.
        if self.headers.get("Content-Length") not in (None, "0") or self.headers.get("Transfer-Encoding"):
            self.close_connection = True
        self._answer(response)

    def _answer(self, response: ApiResponse) -> None:
        payload = json.dumps(response.body).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} - {format % args}\n")


def _not_found(path: str) -> ApiResponse:
    return error_response(
        404, "not_found", f"no such endpoint {path!r}; events go to POST /v1/apps/{{app_id}}/events"
    )


def make_server(storage: Storage, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """A server bound to ``host:port`` (port 0 picks a free one), not yet serving."""
    return _Server((host, port), storage)


def serve(storage: Storage, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve until interrupted; prints the URL it listens on (the real port when ``port`` is 0)."""
    server = make_server(storage, host, port)
    bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
    print(
        f"minidrama: listening on http://{bound_host}:{bound_port}/ "
        f"(POST /v1/apps/{{app_id}}/events) with the lake {storage.uri}",
        flush=True,
    )

    def stop(_signum: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
