"""`minidrama serve`'s group commit: concurrent requests are written together, and no request is
answered 202 before its rows are durable (a write that fails answers 503 to each of its requests)."""

from __future__ import annotations

import http.client
import json
import os
import signal
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
from tests.e2e.serving import post_events

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
    return post_events(url, key, APP, events)


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


def test_worker_processes_resolve_concurrent_requests_and_every_event_is_stored_once(
    tmp_path: Path,
) -> None:
    # GIVEN a server whose requests are resolved by two worker processes
    lake = LocalStorage(tmp_path / "lake")
    _app, key = register_app(lake, APP)
    with serve_in_background(lake, workers=2) as url:
        answers: list[tuple[int, dict[str, Any]]] = []
        lock = threading.Lock()

        def client(number: int) -> None:
            for request in range(3):
                events = _events(10 * number + request, 40) + [{"event_id": f"bad-{number}-{request}"}]
                answer = _post(url, key, events)
                with lock:
                    answers.append(answer)

        # WHEN six clients post three batches each, at once
        threads = [threading.Thread(target=client, args=(number,)) for number in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        # THEN each batch is answered for itself: 40 accepted, its invalid event rejected by name
        assert len(answers) == 18
        for status, body in answers:
            assert status == 202 and body["accepted"] == 40
            assert [rejection["event_id"] for rejection in body["rejected"]][0].startswith("bad-")
        # AND every accepted event is in the lake once, every rejected one in the quarantine once
        assert _stored_ids(lake) == sorted(
            f"c{10 * number + request}-e{n}" for number in range(6) for request in range(3) for n in range(40)
        )
        quarantined = [
            json.loads(line)["raw"]["event_id"]
            for info in lake.list("quarantine/")
            for line in lake.get_bytes(info.key).splitlines()
        ]
        assert sorted(quarantined) == sorted(
            f"bad-{number}-{request}" for number in range(6) for request in range(3)
        )
        # AND the other routes are served by the workers too (an unknown one is the router's 404)
        host, port = url.removeprefix("http://").rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("GET", "/v1/nowhere")
        answer = connection.getresponse()
        assert answer.status == 404 and json.loads(answer.read())["error"] == "not_found"


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_worker_process_that_dies_is_replaced_and_the_server_goes_on(tmp_path: Path) -> None:
    lake = LocalStorage(tmp_path / "lake")
    _app, key = register_app(lake, APP)
    before = set(_descendants(os.getpid()))
    with serve_in_background(lake, workers=2) as url:
        assert _post(url, key, _events(1, 5))[0] == 202
        # GIVEN the two worker processes are running (children of multiprocessing's forkserver,
        # a child of this process that may have been started before)
        workers = [
            pid for pid in _descendants(os.getpid()) if pid not in before and _parent(pid) != os.getpid()
        ]
        assert len(workers) == 2
        # WHEN one is killed (out of memory, an operator's kill -9)
        os.kill(workers[-1], signal.SIGKILL)
        time.sleep(0.5)
        # THEN a request is answered (500 at worst: the client retries), and the next ones are
        # served by a new pool of workers, their events stored
        statuses = [_post(url, key, _events(2 + attempt, 5))[0] for attempt in range(3)]
        assert statuses[0] in (202, 500) and statuses[1:] == [202, 202]
        assert workers[-1] not in _descendants(os.getpid())
        stored = set(_stored_ids(lake))
        assert {f"c1-e{n}" for n in range(5)} <= stored
        assert {f"c{2 + attempt}-e{n}" for attempt in (1, 2) for n in range(5)} <= stored
