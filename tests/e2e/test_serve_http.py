"""`minidrama serve` as a real process over real HTTP: every status, Parquet read back, quarantine."""

from __future__ import annotations

import http.client
import json
import selectors
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from minidrama.ingestion import MAX_BODY_BYTES

APP = "e2e-app"


@dataclass
class Server:
    url: str
    api_key: str
    lake: Path
    process: subprocess.Popen[str]

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
        dataset = ds.dataset(self.lake / "events", format="parquet", partitioning="hive")
        return dataset.to_table().to_pylist()

    def quarantined(self) -> list[dict[str, Any]]:
        return [
            json.loads(line)
            for path in sorted((self.lake / "quarantine").rglob("*.jsonl"))
            for line in path.read_text().splitlines()
        ]


def _cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "minidrama", *args], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError("minidrama serve printed nothing")
    return process.stdout.readline()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    lake = tmp_path_factory.mktemp("serve") / "lake"
    api_key = json.loads(_cli("apps", "add", APP, "--lake", str(lake)))["api_key"]
    process = subprocess.Popen(
        [sys.executable, "-m", "minidrama", "serve", "--lake", str(lake), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = _first_line(process, timeout=30)
        url = line.split("listening on ", 1)[1].split()[0].rstrip("/")
        yield Server(url, api_key, lake, process)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0  # a clean stop on SIGTERM


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
    key = json.loads(_cli("apps", "add", "late-app", "--lake", str(server.lake)))["api_key"]
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
