"""`minidrama serve` as a real process over real HTTP: every status, Parquet read back, quarantine,
strict framing, slow clients, the connection limit, a graceful stop."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

import minidrama.router
from minidrama.config import register_app
from minidrama.ingestion import MAX_BODY_BYTES
from minidrama.lake import LocalStorage
from minidrama.server import Limits, serve_in_background
from tests.contract import (
    GATEWAY_5XX_STATUSES,
    assert_documented,
    documented_error_codes,
    documented_statuses,
    gateway_answers,
)
from tests.e2e.serving import raw_exchange, register, settled, start_serve, stop_serve

APP = "e2e-app"


@dataclass
class Server:
    url: str
    api_key: str
    lake: Path
    process: subprocess.Popen[str] | None = None  # None: served by a thread of this process

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        return host, int(port)

    def post(
        self,
        body: Any,
        *,
        app_id: str = APP,
        key: str | None = "default",
        method: str = "POST",
        path: str = "",
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["x-api-key"] = self.api_key if key == "default" else key
        target = self.url + (path or f"/v1/apps/{app_id}/events")
        request = urllib.request.Request(
            target, data=data if method == "POST" else None, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read()), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read()), dict(error.headers)

    def stored(self) -> list[dict[str, Any]]:
        settled(self.lake)
        if not (self.lake / "events").exists():
            return []
        dataset = ds.dataset(self.lake / "events", format="parquet", partitioning="hive")
        return dataset.to_table().to_pylist()

    def stored_ids(self) -> set[str]:
        return {row["event_id"] for row in self.stored()}

    def quarantined(self) -> list[dict[str, Any]]:
        settled(self.lake)
        return [
            json.loads(line)
            for path in sorted((self.lake / "quarantine").rglob("*.jsonl"))
            for line in path.read_text().splitlines()
        ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    lake = tmp_path_factory.mktemp("serve") / "lake"
    api_key = register(lake, APP)
    served = start_serve(lake)
    try:
        yield Server(served.url, api_key, lake, served.process)
    finally:
        returncode = stop_serve(served)
    assert returncode == 0  # a clean stop on SIGTERM


def launch(n: int, **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"launch-{n}",
        "event_name": "app_launch",
        "event_time": f"2026-11-28T10:{n % 60:02d}:00.250+01:00",
        "user_id": f"user-{n}",
        "session_id": f"session-{n}",
        "os": "Android",
        "region": "br",
        "properties": {"entry_point": "search", "launch_ms": 700 + n, "campaign": "winter"},
    }
    event.update(overrides)
    return event


def order(n: int) -> dict[str, Any]:
    return {
        "event_id": f"order-{n}",
        "event_name": "recharge_order",
        "event_time": "2026-11-28T23:59:59.999999Z",
        "user_id": f"user-{n}",
        "os": "ios",
        "region": "US",
        "properties": {"order_id": f"o-{n}", "amount": 19.99, "currency": "usd", "beans": 2000},
    }


def test_valid_events_are_stored_row_for_row(server: Server) -> None:
    # GIVEN launches and an order
    events = [launch(n) for n in range(1, 4)] + [order(1)]
    # WHEN posted over HTTP
    status, body, headers = server.post({"events": events})
    # THEN 202, and the Parquet files hold exactly these events, typed, in their UTC hour partitions
    assert (status, body) == (202, {"accepted": 4, "rejected": []})
    assert headers["Content-Type"] == "application/json"
    rows = {
        row["event_id"]: row for row in server.stored() if row["event_id"] in {e["event_id"] for e in events}
    }
    assert len(rows) == 4
    first = dict(rows["launch-1"])
    received_at = first.pop("received_at")
    assert abs(datetime.now(UTC) - received_at).total_seconds() < 120
    assert first == {
        "event_id": "launch-1",
        "event_name": "app_launch",
        "event_time": datetime(2026, 11, 28, 9, 1, 0, 250_000, tzinfo=UTC),
        "user_id": "user-1",
        "session_id": "session-1",
        "os": "android",
        "region": "BR",
        "entry_point": "search",
        "success": True,
        "launch_ms": 701,
        **dict.fromkeys(("device_brand", "device_model", "tiktok_version", "gender", "age_group")),
        **dict.fromkeys(("duration_ms", "order_id", "amount", "original_amount", "currency", "beans")),
        "product_id": None,
        "properties": '{"campaign":"winter"}',
        "app_id": APP,
        "dt": first["dt"],
        "hour": 9,
    }
    assert str(first["dt"]) == "2026-11-28"
    paid = rows["order-1"]
    assert (paid["amount"], paid["original_amount"], paid["currency"]) == (
        Decimal("19.99"),
        Decimal("19.99"),
        "USD",
    )
    assert paid["hour"] == 23 and paid["event_time"].microsecond == 999_999


def test_partly_invalid_batches_accept_the_rest_and_quarantine_the_reasons(server: Server) -> None:
    events = [launch(10), launch(11, region="Atlantis"), launch(12, event_time="yesterday"), launch(13)]
    status, body, _headers = server.post({"events": events})
    assert status == 202 and body["accepted"] == 2
    assert [(r["index"], r["event_id"]) for r in body["rejected"]] == [(1, "launch-11"), (2, "launch-12")]
    assert body["rejected"][0]["errors"][0].startswith("region:")
    stored = {row["event_id"] for row in server.stored()}
    assert {"launch-10", "launch-13"} <= stored and not {"launch-11", "launch-12"} & stored
    records = {record["event_id"]: record for record in server.quarantined()}
    assert records["launch-11"]["errors"] == body["rejected"][0]["errors"]
    assert records["launch-12"]["errors"] == body["rejected"][1]["errors"]
    assert records["launch-12"]["raw"]["event_time"] == "yesterday" and records["launch-12"]["app_id"] == APP


@pytest.mark.parametrize(
    ("request_args", "status", "error"),
    [
        ({"body": {"events": [launch(1)] * 1_001}}, 413, "payload_too_large"),
        ({"body": b" " * (MAX_BODY_BYTES + 1)}, 413, "payload_too_large"),
        ({"body": {"events": [launch(1)]}, "key": "mdk_not-the-key"}, 403, "invalid_api_key"),
        ({"body": {"events": [launch(1)]}, "key": None}, 401, "missing_api_key"),
        ({"body": {"events": [launch(1)]}, "app_id": "nobody"}, 404, "unknown_app"),
        ({"body": b'{"events": [}'}, 400, "malformed_request"),
        ({"body": b'{"events": 42}'}, 400, "malformed_request"),
        ({"body": {"events": []}, "path": "/v1/elsewhere"}, 404, "not_found"),
        ({"body": {"events": []}, "method": "GET"}, 405, "method_not_allowed"),
    ],
    ids=[
        "too many",
        "too big",
        "wrong key",
        "missing key",
        "unknown app",
        "malformed",
        "wrong shape",
        "other path",
        "other method",
    ],
)
def test_refused_requests_get_a_json_reason(
    server: Server, request_args: dict[str, Any], status: int, error: str
) -> None:
    answered, body, headers = server.post(**request_args)
    assert answered == status
    assert body["error"] == error and body["message"]
    if status == 405:
        assert headers["Allow"] == "POST"


def test_a_newly_registered_app_is_served_without_a_restart(server: Server) -> None:
    key = register(server.lake, "late-app")
    status, body, _headers = server.post({"events": [launch(50)]}, app_id="late-app", key=key)
    assert (status, body["accepted"]) == (202, 1)


def test_a_chunked_body_is_read_whole(server: Server) -> None:
    # GIVEN a body sent with Transfer-Encoding: chunked (no Content-Length), in three chunks
    text = json.dumps({"events": [launch(60), launch(61)]}).encode()
    chunks = [text[:10], text[10:50], text[50:]]
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request(
        "POST",
        f"/v1/apps/{APP}/events",
        body=iter(chunks),
        headers={"x-api-key": server.api_key, "Content-Type": "application/json"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    # THEN it is answered like any other body
    assert response.status == 202 and json.loads(response.read())["accepted"] == 2
    # AND the kept-alive connection serves the next request (the chunked framing was consumed)
    connection.request(
        "POST", f"/v1/apps/{APP}/events", body=b'{"events": []}', headers={"x-api-key": server.api_key}
    )
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())) == (202, {"accepted": 0, "rejected": []})
    connection.close()


# --- every answer, from the HTTP layer to the contract ---------------------------------------


def _post(key: str, body: bytes, *fields: str, framed: bool = True, target: str = "") -> bytes:
    lines = [f"POST {target or f'/v1/apps/{APP}/events'} HTTP/1.1", "Host: 127.0.0.1", f"x-api-key: {key}"]
    lines += [*fields, *([f"Content-Length: {len(body)}"] if framed else [])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _head(method: str, target: str, *fields: str) -> bytes:
    return ("\r\n".join([f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *fields]) + "\r\n\r\n").encode()


def _batch(event_id: str, encoding: str = "utf-8") -> bytes:
    return json.dumps({"events": [launch(90, event_id=event_id)]}).encode(encoding)


def _chunked(body: bytes, size: int = 64 * 1024) -> bytes:
    pieces = [body[start : start + size] for start in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


@dataclass(frozen=True)
class Answer:
    request: Callable[[str, str], bytes]  # (API key, event_id of the one event sent) -> the bytes sent
    status: int
    code: str  # "" for the 202
    half_close: bool = False


# One request per way of being answered; each carries an event that must be stored only on a 202.
ANSWERS = {
    "accepted": Answer(lambda key, event: _post(key, _batch(event)), 202, ""),
    "no key": Answer(lambda _key, event: _post("", _batch(event)), 401, "missing_api_key"),
    "wrong key": Answer(lambda _key, event: _post("mdk_nope", _batch(event)), 403, "invalid_api_key"),
    "unknown app": Answer(
        lambda key, event: _post(key, _batch(event), target="/v1/apps/nobody/events"), 404, "unknown_app"
    ),
    "other path": Answer(lambda _key, _event: _head("GET", "/v1/elsewhere"), 404, "not_found"),
    "CONNECT": Answer(lambda _key, _event: _head("CONNECT", "127.0.0.1:443"), 404, "not_found"),
    "GET": Answer(lambda _key, _event: _head("GET", f"/v1/apps/{APP}/events"), 405, "method_not_allowed"),
    "TRACE": Answer(lambda _key, _event: _head("TRACE", f"/v1/apps/{APP}/events"), 405, "method_not_allowed"),
    "PROPFIND": Answer(
        lambda key, event: _post(key, _batch(event)).replace(b"POST", b"PROPFIND", 1),
        405,
        "method_not_allowed",
    ),
    "QUERY": Answer(
        lambda key, event: _post(key, _batch(event)).replace(b"POST", b"QUERY", 1), 405, "method_not_allowed"
    ),
    "malformed JSON": Answer(lambda key, _event: _post(key, b'{"events": [}'), 400, "malformed_request"),
    "UTF-16": Answer(lambda key, event: _post(key, _batch(event, "utf-16")), 400, "malformed_request"),
    "UTF-16-BE, no BOM": Answer(
        lambda key, event: _post(key, _batch(event, "utf-16-be")), 400, "malformed_request"
    ),
    "UTF-32": Answer(lambda key, event: _post(key, _batch(event, "utf-32")), 400, "malformed_request"),
    "UTF-8 BOM": Answer(
        lambda key, event: _post(key, b"\xef\xbb\xbf" + _batch(event)), 400, "malformed_request"
    ),
    "body shorter than its Content-Length": Answer(
        lambda key, event: _post(
            key, _batch(event), f"Content-Length: {len(_batch(event)) + 10}", framed=False
        ),
        400,
        "malformed_request",
        half_close=True,
    ),
    "Content-Length twice": Answer(
        lambda key, event: _post(key, _batch(event), f"Content-Length: {len(_batch(event))}"),
        400,
        "malformed_request",
    ),
    "conflicting Content-Length": Answer(
        lambda key, event: _post(key, _batch(event), "Content-Length: 3"), 400, "malformed_request"
    ),
    "Content-Length and chunked": Answer(
        lambda key, event: _post(key, _chunked(_batch(event)), "Transfer-Encoding: chunked"),
        400,
        "malformed_request",
    ),
    "bad Content-Length": Answer(
        lambda key, event: _post(key, _batch(event), "Content-Length: 12abc", framed=False),
        400,
        "malformed_request",
    ),
    "no Host": Answer(lambda _key, _event: b"GET / HTTP/1.1\r\n\r\n", 400, "malformed_request"),
    "not HTTP": Answer(
        lambda _key, _event: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "malformed_request"
    ),
    "gzip, chunked": Answer(
        lambda key, event: _post(
            key, _chunked(_batch(event)), "Transfer-Encoding: gzip, chunked", framed=False
        ),
        501,
        "not_implemented",
    ),
    "identity": Answer(
        lambda key, event: _post(key, _batch(event), "Transfer-Encoding: identity", framed=False),
        501,
        "not_implemented",
    ),
    "too many events": Answer(
        lambda key, event: _post(
            key, json.dumps({"events": [launch(n, event_id=f"{event}-{n}") for n in range(1_001)]}).encode()
        ),
        413,
        "payload_too_large",
    ),
    "announced over 1 MiB, no key": Answer(
        lambda _key, _event: _head("POST", f"/v1/apps/{APP}/events", f"Content-Length: {2 * MAX_BODY_BYTES}"),
        413,
        "payload_too_large",
    ),
    "chunked over 1 MiB": Answer(
        lambda key, event: _post(
            key,
            _chunked(_batch(event)[:-3] + b" " * MAX_BODY_BYTES + b"]}"),
            "Transfer-Encoding: chunked",
            framed=False,
        ),
        413,
        "payload_too_large",
    ),
    "64 KiB request line": Answer(lambda _key, _event: _head("GET", "/" + "a" * 65_536), 414, "uri_too_long"),
    "40 KiB of headers": Answer(
        lambda key, event: _post(key, _batch(event), *(f"X-Padding-{n}: {'p' * 100}" for n in range(400))),
        431,
        "headers_too_large",
    ),
}


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_every_answer_is_json_in_the_documented_shape(server: Server, name: str) -> None:
    case = ANSWERS[name]
    event_id = f"answer-{name}"
    # WHEN the request is sent as raw bytes
    answer = raw_exchange(server.address, case.request(server.api_key, event_id), half_close=case.half_close)
    # THEN the status and error code are the expected ones, in the shape openapi.yaml documents
    assert (answer.status, answer.body.get("error", "")) == (case.status, case.code), answer.body
    assert_documented(answer.status, answer.body, answer.headers)
    if case.status >= 400:
        assert answer.body["message"]
    # AND the event it carried is stored only when the request was accepted
    assert (event_id in server.stored_ids()) is (case.status == 202)


def test_the_document_lists_exactly_the_answers_the_tests_show() -> None:
    shown = {(case.status, case.code) for case in ANSWERS.values()} | {
        (408, "request_timeout"),  # test_a_client_too_slow_is_answered_408_and_nothing_is_stored
        (503, "unavailable"),  # test_a_connection_over_the_limit_is_answered_503
        (500, "internal_error"),  # test_a_bug_is_answered_500_and_the_server_goes_on
    }
    gateway = gateway_answers()  # API Gateway's own answers, as template.yaml configures them
    statuses = {status for status, _code in shown | gateway if status is not None} | GATEWAY_5XX_STATUSES
    assert statuses == documented_statuses()
    assert {code for _status, code in shown | gateway if code} == documented_error_codes()


def test_a_refused_body_still_lets_the_kept_alive_connection_go_on(server: Server) -> None:
    # GIVEN one connection; a request refused after its whole body arrived (400, wrong JSON)
    connection = http.client.HTTPConnection(*server.address, timeout=30)
    headers = {"x-api-key": server.api_key}
    connection.request("POST", f"/v1/apps/{APP}/events", body=b'{"events": 1}', headers=headers)
    first = connection.getresponse()
    assert (first.status, first.getheader("Connection")) == (400, None)
    first.read()
    # WHEN the next request comes on the same connection THEN it is answered
    connection.request("POST", f"/v1/apps/{APP}/events", body=_batch("kept-alive"), headers=headers)
    second = connection.getresponse()
    assert (second.status, json.loads(second.read())["accepted"]) == (202, 1)
    connection.close()


def test_ten_gib_announced_is_refused_at_once_and_the_connection_closed(server: Server) -> None:
    # GIVEN a request announcing a 10 GiB body that sends 1 KiB of it and then waits
    with socket.create_connection(server.address, timeout=30) as sock:
        started = time.monotonic()
        sock.sendall(_post(server.api_key, b"", "Content-Length: 10737418240", framed=False) + b"x" * 1024)
        response = http.client.HTTPResponse(sock)
        response.begin()
        answered = time.monotonic() - started
        body = json.loads(response.read())
        # THEN 413 comes at once (the server does not wait for the body), JSON, with Connection: close
        assert (response.status, body["error"]) == (413, "payload_too_large")
        assert "10737418240 bytes" in body["message"] and response.getheader("Connection") == "close"
        assert answered < 5.0, f"413 after {answered:.2f} s"
        # AND the server closes the connection soon after (it does not read the 10 GiB)
        sock.settimeout(30)
        assert sock.recv(1024) == b""
        assert time.monotonic() - started < 15.0
    # AND it goes on serving
    status, answer, _headers = server.post({"events": [launch(91, event_id="after-10-gib")]})
    assert (status, answer["accepted"]) == (202, 1)


def _wait_closed(sock: socket.socket, until: float) -> tuple[float, bytes]:
    """When the server closed ``sock`` (monotonic time) and what it sent before."""
    received = b""
    sock.settimeout(max(until - time.monotonic(), 0.1))
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return float("inf"), received
    return time.monotonic(), received


def test_slow_clients_are_closed_within_the_timeouts_and_do_not_block_others(server: Server) -> None:
    limits = Limits()
    stored_before = server.stored_ids()
    # GIVEN 200 connections that stall: 100 send nothing, 50 half a request head, 50 a head and part of a body
    started = time.monotonic()
    sockets = [socket.create_connection(server.address, timeout=30) for _ in range(200)]
    for index, sock in enumerate(sockets):
        if index % 4 == 1:
            sock.sendall(f"POST /v1/apps/{APP}/events HTTP/1.1\r\nHost: x\r\nx-api-".encode())
        elif index % 4 == 3:
            sock.sendall(_post(server.api_key, b"", "Content-Length: 500", framed=False) + b'{"events": [')
    try:
        # WHEN a normal client sends a batch meanwhile
        request_started = time.monotonic()
        status, answer, _headers = server.post({"events": [launch(92, event_id="beside-slow-clients")]})
        answered_in = time.monotonic() - request_started
        # THEN it is answered at once
        assert (status, answer["accepted"]) == (202, 1)
        assert answered_in < 5.0, f"answered after {answered_in:.2f} s"
        # AND every stalled connection is closed by the server: silent ones after the idle timeout,
        # slow requests after the request timeout with a JSON 408
        deadline = started + limits.request_timeout + 30.0  # generous: other tests share the machine
        closes: dict[int, tuple[float, bytes]] = {}

        def watch(index: int) -> None:
            closes[index] = _wait_closed(sockets[index], deadline)

        watchers = [threading.Thread(target=watch, args=(index,)) for index in range(200)]
        for watcher in watchers:
            watcher.start()
        for watcher in watchers:
            watcher.join()
    finally:
        for sock in sockets:
            sock.close()
    silent = [closes[index][0] - started for index in range(200) if index % 2 == 0]
    slow = [closes[index] for index in range(200) if index % 2 == 1]
    assert all(seconds != float("inf") for seconds in silent), "an idle connection was never closed"
    assert limits.idle_timeout - 0.5 <= min(silent) and max(silent) <= limits.idle_timeout + 20.0, silent
    assert all(closed != float("inf") for closed, _sent in slow), "a slow request was never closed"
    slow_seconds = [closed - started for closed, _sent in slow]
    assert (
        limits.request_timeout - 0.5
        <= min(slow_seconds)
        <= max(slow_seconds)
        <= limits.request_timeout + 20.0
    )
    for _closed, sent in slow:
        head, _, body = sent.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 ") and json.loads(body)["error"] == "request_timeout"
    assert server.stored_ids() == stored_before | {"beside-slow-clients"}


# --- limits, timeouts and bugs, on an in-process server with short limits -----------------------

QUICK = Limits(
    max_connections=4, idle_timeout=1.0, request_timeout=1.5, write_timeout=5.0, linger_seconds=0.2
)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    storage = LocalStorage(tmp_path_factory.mktemp("quick") / "lake")
    _app, key = register_app(storage, APP)
    with serve_in_background(storage, limits=QUICK) as url:
        yield Server(url, key, storage.root)


@pytest.mark.parametrize(
    "sent",
    [b"POST /v1/apps/e2e-app/events HTTP/1.1\r\nHost: x\r\n", b"PO"],
    ids=["half a head", "two bytes"],
)
def test_a_client_too_slow_is_answered_408_and_nothing_is_stored(quick: Server, sent: bytes) -> None:
    # GIVEN a request that stops half way WHEN the request timeout passes
    answer = raw_exchange(quick.address, sent)
    # THEN a JSON 408, not before the timeout, and the connection is closed
    assert (answer.status, answer.body["error"]) == (408, "request_timeout")
    assert QUICK.request_timeout - 0.2 <= answer.seconds <= QUICK.request_timeout + 10.0
    assert answer.headers["connection"] == "close"
    assert_documented(answer.status, answer.body, answer.headers)


def test_a_body_too_slow_is_answered_408_and_nothing_is_stored(quick: Server) -> None:
    body = _batch("too-slow")
    answer = raw_exchange(quick.address, _post(quick.api_key, body)[: -len(body) // 2])
    assert (answer.status, answer.body["error"]) == (408, "request_timeout")
    assert "too-slow" not in quick.stored_ids()


def test_a_connection_over_the_limit_is_answered_503(quick: Server) -> None:
    # GIVEN as many idle connections as the limit
    held = [socket.create_connection(quick.address, timeout=30) for _ in range(QUICK.max_connections)]
    try:
        time.sleep(0.2)  # let the server accept them
        # WHEN one more connects THEN it is answered 503 with Retry-After, without being read
        answer = raw_exchange(quick.address, b"")
        assert (answer.status, answer.body["error"], answer.headers["retry-after"]) == (
            503,
            "unavailable",
            "1",
        )
        assert_documented(answer.status, answer.body, answer.headers)
    finally:
        for sock in held:
            sock.close()
    # AND once they are gone, requests are served again
    time.sleep(0.5)
    status, body, _headers = quick.post({"events": [launch(93, event_id="after-the-limit")]})
    assert (status, body["accepted"]) == (202, 1)


def test_a_bug_is_answered_500_and_the_server_goes_on(quick: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the contract's function fails with an unexpected error
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(minidrama.router, "handle_post_events", broken)
    # WHEN a request arrives THEN the answer is JSON 500 in the contract's shape
    status, body, headers = quick.post({"events": [launch(94, event_id="during-a-bug")]})
    assert (status, body["error"]) == (500, "internal_error")
    assert_documented(status, body, headers)
    # AND once fixed, the same server serves
    monkeypatch.undo()
    status, body, _headers = quick.post({"events": [launch(94, event_id="after-a-bug")]})
    assert (status, body["accepted"]) == (202, 1)


def test_requests_in_flight_are_finished_on_sigterm(tmp_path: Path) -> None:
    # GIVEN a server with an idle connection and a request whose body is half sent
    lake = tmp_path / "lake"
    key = register(lake, APP)
    served = start_serve(lake)
    idle = socket.create_connection(served.address, timeout=30)
    busy = socket.create_connection(served.address, timeout=30)
    body = _batch("in-flight")
    request = _post(key, body)
    busy.sendall(request[: len(request) - 10])
    time.sleep(0.3)
    # WHEN it is told to stop
    served.process.terminate()
    # THEN the idle connection is closed at once, the request in flight is still answered (and stored)
    assert idle.recv(1024) == b""
    busy.sendall(request[len(request) - 10 :])
    response = http.client.HTTPResponse(busy)
    response.begin()
    assert (response.status, response.getheader("Connection")) == (202, "close")
    assert json.loads(response.read())["accepted"] == 1
    # AND the process exits cleanly, no longer listening
    assert served.process.wait(timeout=60) == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(served.address, timeout=5)
    assert "in-flight" in Server(served.url, key, lake).stored_ids()
    idle.close()
    busy.close()
