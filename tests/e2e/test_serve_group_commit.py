"""`minidrama serve`'s group commit: concurrent requests are written together, and no request is
answered 202 before its rows are durable (a write that fails answers 503 to each of its requests)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds

from minidrama.config import register_app
from minidrama.lake import LocalStorage
from minidrama.server import serve_in_background

APP = "group-app"


def _events(client: int, count: int = 50) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"c{client}-e{number}",
            "event_name": "minis_visit",
            "event_time": "2026-11-28T10:15:00Z",
            "user_id": f"u{number}",
            "os": "ios",
            "region": "US",
            "properties": {"series_id": "s1", "episode": number},
        }
        for number in range(count)
    ]


class _Lake(LocalStorage):
    """A local lake whose group writes can be made to fail, and which counts them."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.failing = False
        self.groups: list[int] = []  # the files of each group write
        self.writing = threading.Event()  # set while a group write waits for `release`
        self.release = threading.Event()
        self.release.set()

    def put_many(self, objects: list[tuple[str, bytes, str | None]]) -> None:
        self.writing.set()
        self.release.wait(timeout=30)
        if self.failing:
            raise OSError(28, "No space left on device")
        self.groups.append(len(objects))
        super().put_many(objects)


@contextmanager
def _serving(tmp_path: Path) -> Iterator[tuple[_Lake, str, str]]:
    lake = _Lake(tmp_path / "lake")
    _app, key = register_app(lake, APP)
    with serve_in_background(lake) as url:
        yield lake, url, key


def _post(url: str, key: str, events: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("POST", f"/v1/apps/{APP}/events", json.dumps({"events": events}), {"x-api-key": key})
    answer = connection.getresponse()
    body = json.loads(answer.read())
    connection.close()
    return answer.status, body


def _stored_ids(lake: LocalStorage) -> list[str]:
    files = [info.key for info in lake.list("events/")]
    if not files:
        return []
    table = ds.dataset([str(lake.path(key)) for key in files], format="parquet").to_table()
    return sorted(table.column("event_id").to_pylist())


def test_requests_that_arrive_during_a_write_are_written_together_and_answered_after(
    tmp_path: Path,
) -> None:
    with _serving(tmp_path) as (lake, url, key):
        answers: list[tuple[int, dict[str, Any]]] = []

        def post(client: int) -> threading.Thread:
            thread = threading.Thread(target=lambda: answers.append(_post(url, key, _events(client))))
            thread.start()
            return thread

        # GIVEN a first request whose write is held on the disk
        lake.release.clear()
        first = post(0)
        assert lake.writing.wait(timeout=30)
        # WHEN seven more arrive meanwhile
        others = [post(client) for client in range(1, 8)]
        first.join(timeout=1)
        # THEN none is answered before its rows are written
        assert answers == [] and first.is_alive()
        time.sleep(1.0)  # the seven are checked and queued behind the write
        lake.release.set()
        for thread in [first, *others]:
            thread.join(timeout=30)
        # AND all eight are answered 202 with their events, stored by two writes: the first
        # request's, then the seven together (one file for their hour partition)
        assert sorted(status for status, _body in answers) == [202] * 8
        assert all(body == {"accepted": 50, "rejected": []} for _status, body in answers)
        assert _stored_ids(lake) == sorted(f"c{c}-e{n}" for c in range(8) for n in range(50))
        assert lake.groups == [1, 1]


def test_a_failed_write_answers_503_and_stores_nothing_until_the_retry(tmp_path: Path) -> None:
    with _serving(tmp_path) as (lake, url, key):
        # GIVEN the lake's disk is full
        lake.failing = True
        events = _events(1, 20) + [{"event_id": "bad", "event_name": "minis_visit"}]
        # WHEN a batch is posted THEN it is refused with 503 (retry), and nothing of it is stored:
        # not its events, not its quarantine line
        status, body = _post(url, key, events)
        assert status == 503 and body["error"] == "unavailable"
        assert lake.list("events/") == [] and lake.list("quarantine/") == []
        # WHEN the disk has room again and the client retries THEN it is stored, once
        lake.failing = False
        status, body = _post(url, key, events)
        assert status == 202 and body["accepted"] == 20 and len(body["rejected"]) == 1
        assert _stored_ids(lake) == sorted(f"c1-e{n}" for n in range(20))
        assert len(lake.list("quarantine/")) == 1
