"""`kill -9` of `minidrama serve` under load: nothing acknowledged is lost, nothing is counted twice.

Clients send batches of new events and re-send a batch until it is acknowledged, as the API asks
(a request cut off by the kill may or may not have been stored). The server is killed three
times while they do, each time restarted on the same lake, and one stored batch is sent again
at the end (a client that never saw its 202). Then every acknowledged event must be in the
lake's Parquet files, and the metrics computed from them must count each event once, whatever
copies the re-sent batches left behind.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds

from tests.e2e.serving import Served, cli, register, start_serve, stop_serve

APP = "kill-app"
DAY = "2026-11-30"
CLIENTS = 6
BATCHES_PER_CLIENT = 40
EVENTS_PER_BATCH = 25
KILL_AT = (0.25, 0.5, 0.75)  # share of the batches acknowledged when the server is killed
AMOUNT = Decimal("1.25")


def _event(client: int, batch: int, position: int) -> dict[str, Any]:
    event_id = f"c{client}-b{batch}-e{position}"
    base = {
        "event_id": event_id,
        "event_time": f"{DAY}T{10 + client:02d}:{batch % 60:02d}:{position:02d}Z",
        "user_id": f"user-{client}-{position}",
        "os": "ios" if position % 2 else "android",
        "region": "US",
    }
    if position % 2:
        return base | {"event_name": "minis_visit"}
    properties = {"order_id": f"order-{event_id}", "amount": float(AMOUNT), "currency": "USD"}
    return base | {"event_name": "recharge_order", "properties": properties}


@dataclass
class Load:
    """What the clients sent and what the server acknowledged; the server's URL while it is up."""

    key: str
    url: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: set[str] = field(default_factory=set)
    batches_acknowledged: int = 0
    requests: int = 0
    failed_requests: int = 0  # cut off by a kill, refused while down, or answered 503
    unexpected: list[str] = field(default_factory=list)

    def current_url(self) -> str | None:
        with self.lock:
            return self.url

    def post(self, url: str, body: bytes) -> int:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            connection.request("POST", f"/v1/apps/{APP}/events", body=body, headers={"x-api-key": self.key})
            response = connection.getresponse()
            answer = json.loads(response.read())
            if response.status == 202 and answer != {"accepted": EVENTS_PER_BATCH, "rejected": []}:
                self.unexpected.append(f"202 with {answer}")
            return response.status
        finally:
            connection.close()

    def send_all(self, client: int) -> None:
        for batch in range(BATCHES_PER_CLIENT):
            events = [_event(client, batch, position) for position in range(EVENTS_PER_BATCH)]
            body = json.dumps({"events": events}).encode()
            started = time.monotonic()
            while time.monotonic() - started < 120:
                url = self.current_url()
                status = None
                if url is not None:
                    try:
                        status = self.post(url, body)
                    except (OSError, http.client.HTTPException):
                        status = None  # the server died under this request, or is not up yet
                with self.lock:
                    self.requests += url is not None
                    if status == 202:
                        self.acknowledged.update(event["event_id"] for event in events)
                        self.batches_acknowledged += 1
                        break
                    self.failed_requests += url is not None
                    if status not in (None, 503):
                        self.unexpected.append(f"status {status}")
                time.sleep(0.05)
            else:
                self.unexpected.append(f"batch {client}/{batch} never acknowledged")


def _wait_for(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the load made no progress"
        time.sleep(0.02)


def _stored_event_ids(lake: Path) -> Counter[str]:
    dataset = ds.dataset(lake / "events", format="parquet", partitioning="hive")  # skips ".tmp-" files
    return Counter(dataset.to_table(columns=["event_id"]).column("event_id").to_pylist())


def test_kill_9_under_load_loses_nothing_acknowledged_and_counts_nothing_twice(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    load = Load(register(lake, APP))
    total_batches = CLIENTS * BATCHES_PER_CLIENT
    log = tmp_path / "serve.log"
    # GIVEN a server under load from six clients
    served: Served = start_serve(lake, log)
    load.url = served.url
    clients = [threading.Thread(target=load.send_all, args=(client,)) for client in range(CLIENTS)]
    for client in clients:
        client.start()
    try:
        # WHEN it is killed with SIGKILL three times while they send, and restarted each time
        for share in KILL_AT:
            _wait_for(lambda share=share: load.batches_acknowledged >= share * total_batches, timeout=120)
            served.process.kill()
            served.process.wait(timeout=30)
            with load.lock:
                load.url = None
            served = start_serve(lake, log)
            with load.lock:
                load.url = served.url
        for client in clients:
            client.join(timeout=300)
        # AND a client that never saw its 202 sends a stored batch again (what a kill can cause)
        again = [_event(0, 0, position) for position in range(EVENTS_PER_BATCH)]
        assert load.post(served.url, json.dumps({"events": again}).encode()) == 202
    finally:
        with load.lock:
            load.url = None
        returncode = stop_serve(served) if served.process.poll() is None else served.process.returncode
    assert returncode == 0
    assert load.unexpected == []
    events = [
        _event(client, batch, position)
        for client in range(CLIENTS)
        for batch in range(BATCHES_PER_CLIENT)
        for position in range(EVENTS_PER_BATCH)
    ]
    sent = {event["event_id"] for event in events}
    sent_by_name = Counter(event["event_name"] for event in events)
    # THEN every acknowledged event is stored, and nothing that was not sent
    stored = _stored_event_ids(lake)
    assert load.acknowledged == sent
    lost = load.acknowledged - set(stored)
    assert lost == set()
    assert set(stored) <= sent
    # AND the metrics count each event once, whatever copies re-sent batches left in the files
    cli("compute", "--lake", str(lake), "--app", APP, "--date", DAY)
    document = json.loads((lake / f"metrics/app_id={APP}/dt={DAY}/metrics.json").read_text())
    everyone = document["segments"]["all"]
    visits = next(stage for stage in everyone["funnel"]["recharge"] if stage["stage"] == "minis_visit")
    orders = sent_by_name["recharge_order"]
    assert visits["pv"] == sent_by_name["minis_visit"]
    assert everyone["iap_orders"]["all"]["recharge_orders"] == orders
    assert Decimal(str(everyone["iap_orders"]["all"]["gmv"])) == AMOUNT * orders
    copies = sum(stored.values()) - len(stored)
    assert copies >= EVENTS_PER_BATCH
    # The figures behind the README's claims (shown with `pytest -s`).
    print(
        f"\nkill -9 under load: {len(KILL_AT)} kills, {load.requests} requests "
        f"({load.failed_requests} cut off or refused, re-sent), {len(load.acknowledged)} events "
        f"acknowledged, 0 lost, {copies} stored twice by re-sent requests, each counted once"
    )
