"""The engine's state (day facts and rollups): reused while valid, rebuilt when events change."""

from __future__ import annotations

import json
from datetime import date

import pyarrow.parquet as pq

from minidrama.config import AppConfig
from minidrama.metrics import compact_days, compute_days
from tests.metrics_support import compute, event, ingest

D = date(2026, 11, 10)


def _launch(event_id, user, time):
    return event(event_id, "app_launch", time, user, entry_point="feed")


def _state_keys(lake):
    return sorted(info.key for info in lake.list("state/"))


def test_a_late_event_on_an_old_day_changes_the_documents_after_it(lake):
    # GIVEN D computed with u2 launching for the first time on D
    ingest(lake, [_launch("a", "u1", "2026-11-05T10:00:00Z"), _launch("b", "u1", "2026-11-10T10:00:00Z")])
    ingest(lake, [_launch("c", "u2", "2026-11-10T11:00:00Z")])
    assert compute(lake, D)["segments"]["all"]["dashboard"]["new_users"] == 1

    # WHEN a launch of u2 a week earlier arrives late, and D is recomputed
    ingest(lake, [_launch("d", "u2", "2026-11-03T09:00:00Z")])
    document = compute(lake, D)

    # THEN u2 is no longer new on D and is retained from the 11-03 cohort
    all_users = document["segments"]["all"]
    assert all_users["dashboard"]["new_users"] == 0
    assert all_users["dashboard"]["total_users"] == 2
    assert all_users["retention"]["new"]["d7"] == {
        "cohort_date": "2026-11-03",
        "cohort_size": 1,
        "retained": 1,
        "rate": 1.0,
    }


def test_state_is_reused_while_no_event_file_changes(lake):
    # GIVEN a few days computed once
    app = AppConfig("app")
    ingest(lake, [_launch(f"e{n}", f"u{n}", f"2026-11-{n:02d}T10:00:00Z") for n in range(1, 11)])
    compute_days(lake, app, [D])
    state = _state_keys(lake)
    index = json.loads(lake.get_bytes("state/app_id=app/index.json"))

    # WHEN D is computed again with the same events
    compute_days(lake, app, [D])

    # THEN no state was rebuilt
    assert _state_keys(lake) == state
    assert json.loads(lake.get_bytes("state/app_id=app/index.json")) == index
    # AND compacting a day rebuilds only the state of what changed, with the same document
    before = compute(lake, D, app)
    compact_days(lake, app, [D])
    after = compute(lake, D, app)
    assert {k: v for k, v in before.items() if k != "generated_at"} == {
        k: v for k, v in after.items() if k != "generated_at"
    }


def test_compaction_leaves_one_file_per_hour_and_each_event_once(lake):
    # GIVEN the same batch sent twice and another batch into the same hour
    batch = [_launch(f"e{n}", f"u{n}", f"2026-11-10T10:{n:02d}:00Z") for n in range(5)]
    ingest(lake, batch)
    ingest(lake, batch)
    ingest(lake, [_launch("x", "u9", "2026-11-10T10:30:00Z")])
    app = AppConfig("app")

    # WHEN the day is compacted
    rewritten = compact_days(lake, app, [D])

    # THEN the hour holds one live data file plus the switch manifest, and nothing is lost
    keys = [info.key for info in lake.list("events/app_id=app/dt=2026-11-10/hour=10/")]
    assert rewritten == 1
    assert [key.rsplit("/", 1)[-1].startswith("compacted-") for key in keys if key.endswith(".parquet")] == [
        True
    ]
    assert any(key.endswith("_compaction.json") for key in keys)
    table = pq.read_table(lake.path(next(key for key in keys if key.endswith(".parquet"))))
    assert sorted(table.column("event_id").to_pylist()) == ["e0", "e1", "e2", "e3", "e4", "x"]
    assert compute(lake, D, app)["segments"]["all"]["behavior"]["visit_count"] == 6


def test_a_compaction_stopped_after_its_switch_is_finished_by_the_next_one(lake):
    # GIVEN a partition compacted, whose replaced files were not deleted (the run stopped after the switch)
    app = AppConfig("app")
    ingest(lake, [_launch("a", "u1", "2026-11-10T10:00:00Z")])
    ingest(lake, [_launch("b", "u2", "2026-11-10T10:05:00Z")])
    prefix = "events/app_id=app/dt=2026-11-10/hour=10/"
    originals = {info.key: lake.get_bytes(info.key) for info in lake.list(prefix)}
    compact_days(lake, app, [D])
    for key, data in originals.items():
        lake.put_bytes(key, data)
    assert compute(lake, D, app)["segments"]["all"]["behavior"]["visit_count"] == 2  # hidden by the manifest

    # WHEN a late file arrives and the partition is compacted again
    ingest(lake, [_launch("c", "u3", "2026-11-10T10:10:00Z")])
    compact_days(lake, app, [D])

    # THEN the leftovers are gone and every event counts once
    names = [info.key.rsplit("/", 1)[-1] for info in lake.list(prefix) if info.key.endswith(".parquet")]
    assert len(names) == 1 and names[0].startswith("compacted-")
    assert compute(lake, D, app)["segments"]["all"]["behavior"]["visit_count"] == 3


def test_state_whose_files_are_gone_is_rebuilt(lake):
    # GIVEN computed days, then the files of every rollup lost (a run stopped between deleting
    # files and writing the index)
    app = AppConfig("app")
    ingest(lake, [_launch(f"e{n}", "u1", f"2026-11-{n:02d}T10:00:00Z") for n in range(1, 11)])
    expected = compute(lake, D, app)
    lake.delete([info.key for info in lake.list("state/app_id=app/rollups/")])

    # WHEN the day is computed again
    document = compute(lake, D, app)

    # THEN the state is rebuilt from the events and the document is the same
    assert {k: v for k, v in document.items() if k != "generated_at"} == {
        k: v for k, v in expected.items() if k != "generated_at"
    }
    assert lake.list("state/app_id=app/rollups/")


def test_state_files_no_index_names_are_removed(lake):
    # GIVEN computed state plus a file no index entry names (an older state version, say)
    app = AppConfig("app")
    ingest(lake, [_launch("a", "u1", "2026-11-10T10:00:00Z")])
    compute(lake, D, app)
    lake.put_bytes("state/app_id=app/day_facts/dt=2026-01-01/launches-old.parquet", b"old")
    named = _state_keys(lake)

    # WHEN the app is computed again
    compute(lake, D, app)

    # THEN the stray file is gone and everything the index names is still there
    assert _state_keys(lake) == [key for key in named if "launches-old" not in key]
