"""Faults injected into the metrics job on S3: compaction; the state, facts and documents of a computation.

Every call of every S3 operation a fault-free run makes is failed in turn (``tests/faults.py``;
the error codes take turns, since the code under test treats them alike and botocore's retries
are exercised by the ``once`` mode). After each fault: the run failed loudly or botocore's retry
got the call through; what a reader sees is the lake before the run or after a fault-free run,
never a mixture; and the same run repeated without faults gives exactly the fault-free result,
with nothing left behind that no index names.

Both steps stop at their first error, so a write applied with its answer lost leaves the lake a
refusal of the next call leaves: ``answer-lost`` is injected where it differs, into DeleteObjects.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import count
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from minidrama.config import AppConfig
from minidrama.ingestion import ingest_events
from minidrama.lake import S3Storage, events_partition, state_prefix
from minidrama.metrics import compute_days
from minidrama.metrics.compaction import compact_partition, readable_files
from minidrama.metrics.facts import ALL_TABLES, FactsIndex, table_prefix
from tests.faults import FaultInjector, Tally, plan, rotated
from tests.metrics_support import event, without_generated_at

APP = AppConfig("app")
RECEIVED = datetime(2026, 11, 10, tzinfo=UTC)
_buckets = count()


@pytest.fixture
def s3(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("s3")


def _snapshot(storage: S3Storage) -> dict[str, bytes]:
    return {info.key: storage.get_bytes(info.key) for info in storage.list("")}


def _restore(s3: Any, snapshot: dict[str, bytes]) -> S3Storage:
    """A new bucket holding ``snapshot``, written by the same client (no fault is armed meanwhile)."""
    bucket = f"faults-{next(_buckets)}"
    s3.create_bucket(Bucket=bucket)
    storage = S3Storage(s3, bucket)
    for key, data in snapshot.items():
        storage.put_bytes(key, data)
    return storage


def _launch(event_id: str, user: str, time: str) -> dict[str, Any]:
    return event(event_id, "app_launch", time, user, entry_point="feed")


# --- compaction -------------------------------------------------------------------------------

D = date(2026, 11, 5)
HOURS = (10, 12, 13, 14)


def _compaction_lake(storage: S3Storage) -> None:
    """Hours of D in every state compaction meets: two files with a copy in common (10), a
    compacted file and a late one (12), a compaction stopped after its switch (13), one file (14)."""
    at = {hour: f"2026-11-05T{hour}:{{:02d}}:00Z" for hour in HOURS}
    first = [_launch(f"e{hour}-{n}", f"u{n}", at[hour].format(n)) for hour in HOURS for n in range(3)]
    ingest_events(storage, APP, first, received_at=RECEIVED)
    again = [e for e in first if e["event_id"] == "e10-2"] + [
        _launch("e10-9", "u9", at[10].format(9)),
        _launch("e12-9", "u9", at[12].format(9)),
        _launch("e13-9", "u9", at[13].format(9)),
    ]
    # hours 12 and 13 compacted first, then 12 gets a late file and 13's replaced files come back
    ingest_events(storage, APP, again[-1:], received_at=RECEIVED)
    prefix_13 = events_partition("app", D, 13)
    originals = {info.key: storage.get_bytes(info.key) for info in storage.list(prefix_13)}
    ingest_events(storage, APP, [e for e in first if e["event_id"].startswith("e12")], received_at=RECEIVED)
    compact_partition(storage, "app", D, 12)
    compact_partition(storage, "app", D, 13)
    for key, data in originals.items():
        storage.put_bytes(key, data)
    ingest_events(storage, APP, again[:-1], received_at=RECEIVED + timedelta(hours=1))


def _reader_view(storage: S3Storage) -> dict[int, list[tuple[str, str]]]:
    """What a reader reads of each hour of D: (event_id, received_at) of every row, sorted."""
    view = {}
    for hour in HOURS:
        listing = storage.list(events_partition("app", D, hour))
        rows = [
            (row["event_id"], row["received_at"].isoformat())
            for info in readable_files(storage, listing)
            for row in pq.read_table(io.BytesIO(storage.get_bytes(info.key))).to_pylist()
        ]
        view[hour] = sorted(rows)
    return view


def _data_files(storage: S3Storage, hour: int) -> list[str]:
    return [
        info.key for info in storage.list(events_partition("app", D, hour)) if info.key.endswith(".parquet")
    ]


def _compact(storage: S3Storage) -> int:
    """The job's compaction of D (``compact_days``), over the hours that hold files."""
    return sum(compact_partition(storage, "app", D, hour) for hour in HOURS)


def test_compaction_faults_at_every_call_leave_readers_a_whole_partition(s3, no_retry_sleep, record_property):
    # GIVEN hours of D in every state compaction meets, what readers see before, and after a fault-free run
    s3.create_bucket(Bucket="faults-setup")
    setup = S3Storage(s3, "faults-setup")
    _compaction_lake(setup)
    snapshot = _snapshot(setup)
    before = _reader_view(setup)
    injector = FaultInjector(s3)
    clean = _restore(s3, snapshot)
    injector.arm(None)
    assert _compact(clean) == 2
    calls = Counter(injector.calls)
    after = _reader_view(clean)
    assert before != after and all(len(set(rows)) == len(rows) for rows in after.values())
    faults = rotated(
        plan(
            calls,
            {
                "ListObjectsV2": ("refused", "once"),
                "GetObject": ("refused",),
                "HeadObject": ("refused",),
                "PutObject": ("refused", "once"),
                "DeleteObjects": ("refused", "answer-lost", "partial"),
            },
        )
    )
    assert (calls["ListObjectsV2"], calls["PutObject"], calls["DeleteObjects"]) == (4, 4, 3)
    tally = Tally("compaction")

    for fault in faults:
        storage = _restore(s3, snapshot)
        # WHEN the Nth call of the operation goes wrong
        injector.arm(fault)
        try:
            _compact(storage)
            raised = None
        except Exception as error:  # noqa: BLE001 - any error is the loud failure sought
            raised = error
        fired = list(injector.fired)
        injector.arm(None)
        tally.case(fired)
        assert fired == [fault], fault

        # THEN the run failed, unless botocore's retry got the call through
        assert (raised is None) == fault.retried_by_botocore, (fault, raised)
        # AND each hour reads as before the run or as after it, never both or a part
        view = _reader_view(storage)
        assert all(view[hour] in (before[hour], after[hour]) for hour in HOURS), fault
        if _snapshot(storage) == snapshot:
            continue  # nothing was written: running again is the fault-free run

        # WHEN the job runs again THEN every hour is as after a fault-free run: one file, each event once
        _compact(storage)
        view = _reader_view(storage)
        tally.lost += sum(len({e for e, _r in before[h]} - {e for e, _r in view[h]}) for h in HOURS)
        tally.doubled += sum(len(rows) - len(set(rows)) for rows in view.values())
        assert view == after, fault
        assert all(len(_data_files(storage, hour)) == 1 for hour in HOURS), fault

    tally.record(record_property)
    assert (tally.lost, tally.doubled) == (0, 0)


# --- a computation: state, stored facts, their indexes, the documents ---------------------------

HISTORY = [date(2026, 11, 3), date(2026, 11, 4)]
COMPUTED = date(2026, 11, 5)
NOW = datetime(2026, 11, 6, 1, 30, tzinfo=UTC)  # no week or month of these days has ended


def _order(event_id: str, user: str, time: str, amount: float) -> dict[str, Any]:
    return event(event_id, "recharge_order", time, user, order_id=event_id, amount=amount, currency="USD")


def _computation_lake(storage: S3Storage) -> None:
    """Nov 3 and 4 computed; then a late launch and order of Nov 4 and the events of Nov 5 arrive,
    so computing Nov 5 rebuilds Nov 4's state (replacing files) and adds its own."""
    ingest_events(
        storage,
        APP,
        [
            _launch("a1", "u1", "2026-11-03T10:00:00Z"),
            _launch("a2", "u2", "2026-11-03T11:00:00Z"),
            _order("o1", "u1", "2026-11-03T10:05:00Z", 4.99),
            _launch("b1", "u1", "2026-11-04T10:00:00Z"),
            _launch("b3", "u3", "2026-11-04T12:00:00Z"),
        ],
        received_at=RECEIVED,
    )
    compute_days(storage, APP, HISTORY, now=NOW)
    ingest_events(
        storage,
        APP,
        [
            _launch("b2", "u2", "2026-11-04T10:30:00Z"),
            _order("o2", "u2", "2026-11-04T10:35:00Z", 1.99),
            _launch("c1", "u1", "2026-11-05T10:00:00Z"),
            _launch("c3", "u3", "2026-11-05T10:10:00Z"),
            _launch("c4", "u4", "2026-11-05T10:20:00Z"),
            _order("o3", "u3", "2026-11-05T10:15:00Z", 0.99),
        ],
        received_at=RECEIVED + timedelta(hours=1),
    )


def _documents(storage: S3Storage) -> dict[str, dict[str, Any]]:
    return {
        info.key: without_generated_at(json.loads(storage.get_bytes(info.key)))
        for info in storage.list("metrics/")
    }


def _indexed(storage: S3Storage) -> set[str]:
    """Every state and facts file the two indexes name, each of which must be there with its recorded
    size (a key names one content: files are named by their SHA-256, which readers verify)."""
    sizes = {info.key: info.size for info in storage.list("")}
    state = json.loads(storage.get_bytes(f"{state_prefix('app')}index.json"))
    named = [
        file
        for area in ("day_facts", "rollups")
        for e in state[area].values()
        for file in e["files"].values()
    ]
    index = FactsIndex.load(storage, "app", "UTC")
    named += [vars(entry) for tables in index.days.values() for entry in tables.values()]
    assert all(sizes.get(file["key"]) == file["size"] for file in named), (
        "an index names a file it does not hold"
    )
    return {file["key"] for file in named}


def _stored_files(storage: S3Storage) -> set[str]:
    keys = {info.key for info in storage.list(state_prefix("app")) if not info.key.endswith("index.json")}
    return keys | {info.key for table in ALL_TABLES for info in storage.list(table_prefix(table, "app"))}


# botocore's retries are exercised by the other steps (``once``); here every call of each operation
# fails for good, or (DeleteObjects) is applied with its answer lost or fails for one key.
COMPUTATION_MODES = {
    "writes": {"PutObject": ("refused",), "DeleteObjects": ("refused", "answer-lost", "partial")},
    "reads": {"ListObjectsV2": ("refused",), "GetObject": ("refused",), "HeadObject": ("refused",)},
}


@pytest.mark.parametrize("calls_failed", sorted(COMPUTATION_MODES))
def test_computation_faults_at_every_call_never_publish_partial_state(
    s3, no_retry_sleep, record_property, calls_failed
):
    # GIVEN a lake whose next computation replaces state and adds to it, the documents before it,
    # and the documents, stored facts and range document of a fault-free computation
    s3.create_bucket(Bucket="faults-setup")
    setup = S3Storage(s3, "faults-setup")
    _computation_lake(setup)
    snapshot = _snapshot(setup)
    before = _documents(setup)
    injector = FaultInjector(s3)
    clean = _restore(s3, snapshot)
    injector.arm(None)
    compute_days(clean, APP, [COMPUTED], now=NOW)
    calls = Counter(injector.calls)
    after = _documents(clean)
    assert set(after) - set(before) == {"metrics/app_id=app/dt=2026-11-05/metrics.json"}
    assert _stored_files(clean) == _indexed(clean)
    faults = rotated(plan(calls, COMPUTATION_MODES[calls_failed]))
    assert calls["PutObject"] >= 15 and calls["DeleteObjects"] == 1 and calls["ListObjectsV2"] >= 8
    tally = Tally(f"metrics state and facts, {calls_failed}")

    for fault in faults:
        storage = _restore(s3, snapshot)
        # WHEN the Nth call of the operation goes wrong
        injector.arm(fault)
        try:
            compute_days(storage, APP, [COMPUTED], now=NOW)
            raised = None
        except Exception as error:  # noqa: BLE001 - any error is the loud failure sought
            raised = error
        fired = list(injector.fired)
        injector.arm(None)
        tally.case(fired)
        assert fired == [fault], fault

        # THEN the run failed, unless botocore's retry got the call through
        assert (raised is None) == fault.retried_by_botocore, (fault, raised)
        # AND every document is the one before the run or the fault-free one: none from partial state
        documents = _documents(storage)
        assert all(documents[key] in (before.get(key), after[key]) for key in documents), fault
        # AND the indexes name only files that are there (whole: a key names one content)
        _indexed(storage)
        if _snapshot(storage) == snapshot:
            continue  # nothing was written: running again is the fault-free run

        # WHEN the job runs again THEN everything is as after a fault-free run, nothing left unnamed
        compute_days(storage, APP, [COMPUTED], now=NOW)
        assert _documents(storage) == after, fault
        assert _stored_files(storage) == _indexed(storage), fault

    tally.record(record_property)
