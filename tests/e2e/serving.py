"""Running `minidrama` as a real process for the end-to-end tests: the CLI, `minidrama serve`, raw HTTP."""

from __future__ import annotations

import http.client
import json
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def cli(*args: str) -> str:
    """Run ``python -m minidrama ARGS`` and return what it printed (raises if it fails)."""
    done = subprocess.run(
        [sys.executable, "-m", "minidrama", *args], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout


def register(lake: Path, app_id: str) -> str:
    """Register ``app_id`` in the lake and return its API key."""
    return str(json.loads(cli("apps", "add", app_id, "--lake", str(lake)))["api_key"])


@dataclass
class Served:
    url: str
    process: subprocess.Popen[str]

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        return host, int(port)


def start_serve(lake: Path, log: Path | None = None, port: int = 0) -> Served:
    """``minidrama serve`` on ``lake`` (port 0: a free one), once it prints the URL it listens on.

    Its log (one line per request) goes to ``log`` or nowhere: a pipe nobody reads would fill up
    and stall the server.
    """
    errors = log.open("a") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "minidrama", "serve", "--lake", str(lake), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(60):
            process.kill()
            raise AssertionError("minidrama serve printed nothing within 60 s")
    line = process.stdout.readline()
    assert "listening on " in line, line
    return Served(line.split("listening on ", 1)[1].split()[0].rstrip("/"), process)


def post_events(url: str, key: str, app_id: str, events: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """POST ``events`` to the server at ``url``; the status and the decoded answer."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    body = json.dumps({"events": events})
    connection.request("POST", f"/v1/apps/{app_id}/events", body, {"x-api-key": key})
    answer = connection.getresponse()
    decoded = json.loads(answer.read())
    connection.close()
    return answer.status, decoded


def settled(lake: Path, timeout: float = 30.0) -> None:
    """Wait until what `minidrama serve` acknowledged is in the lake's files: its journal holds no
    segment (one exists from the first journaled batch until the flusher has stored it)."""
    deadline = time.monotonic() + timeout
    while any((lake / ".journal").glob("*.journal")):
        if time.monotonic() > deadline:
            raise AssertionError(f"the journal of {lake} was not stored within {timeout} s")
        time.sleep(0.05)


def stop_serve(served: Served) -> int:
    """SIGTERM, then the exit code (the server stops gracefully)."""
    served.process.send_signal(signal.SIGTERM)
    return served.process.wait(timeout=60)


@contextmanager
def serving(lake: Path, log: Path | None = None) -> Iterator[Served]:
    served = start_serve(lake, log)
    try:
        yield served
    finally:
        if served.process.poll() is None:
            stop_serve(served)


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: Any  # the JSON body
    seconds: float  # from the first byte sent to the whole answer read


def raw_exchange(
    address: tuple[str, int], data: bytes, *, half_close: bool = False, timeout: float = 60.0
) -> RawAnswer:
    """Send ``data`` as is on a new connection (then close our side if ``half_close``) and read one answer."""
    with socket.create_connection(address, timeout=timeout) as sock:
        started = time.monotonic()
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        seconds = time.monotonic() - started
    headers = {name.lower(): value for name, value in response.getheaders()}
    return RawAnswer(response.status, headers, json.loads(body), seconds)
