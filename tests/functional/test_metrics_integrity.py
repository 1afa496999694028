"""State that cannot silently lie: damaged state is rebuilt from the events, unreadable events fail loudly.

Every case starts from a copy of one lake of nine simulated days, computed cleanly, and compares
the documents computed after the damage with the clean ones.
"""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from minidrama.cli import main
from minidrama.config import AppConfig, register_app
from minidrama.ingestion import ingest_events
from minidrama.lake import LocalStorage, S3Storage, metrics_key
from minidrama.metrics import compact_days, compute_days
from minidrama.metrics.exceptions import UnreadableEvents
from minidrama.simulator import simulate
from tests.conftest import load_event, load_handler
from tests.metrics_support import event, without_generated_at

APP = AppConfig("app")
FIRST = date(2026, 11, 1)
DAYS = [FIRST + timedelta(days=n) for n in range(9)]
D = DAYS[-1]
INDEX = "state/app_id=app/index.json"
ENGINE_LOGGER = "minidrama.metrics.engine"


@pytest.fixture(scope="module")
def clean_lake(tmp_path_factory: pytest.TempPathFactory) -> LocalStorage:
    """Nine days of a small simulated app (launches, sessions, orders, late events), all computed."""
    lake = LocalStorage(tmp_path_factory.mktemp("clean") / "lake")
    for _day, events in simulate(FIRST, len(DAYS), seed=11, new_users_per_day=8):
        for start in range(0, len(events), 1_000):
            ingest_events(
                lake, APP, events[start : start + 1_000], received_at=datetime(2026, 11, 10, tzinfo=UTC)
            )
    compute_days(lake, APP, DAYS)
    return lake


@pytest.fixture
def lake(clean_lake: LocalStorage, tmp_path: Path) -> LocalStorage:
    """A copy of the clean lake, to damage."""
    shutil.copytree(clean_lake.root, tmp_path / "lake")
    return LocalStorage(tmp_path / "lake")


def _document(lake: LocalStorage, day: date) -> dict[str, Any]:
    return without_generated_at(json.loads(lake.get_bytes(metrics_key("app", day))))


def _state_key(lake: LocalStorage, area: str, day: date, kind: str) -> str:
    return str(json.loads(lake.get_bytes(INDEX))[area][day.isoformat()]["files"][kind]["key"])


def _rows(path: Path) -> list[tuple[Any, ...]]:
    return duckdb.connect().execute(f"SELECT * FROM read_parquet('{path}') ORDER BY ALL").fetchall()


def _index_matches_files(lake: LocalStorage) -> bool:
    """Whether every file the state index names has the recorded size and SHA-256."""
    import hashlib

    index = json.loads(lake.get_bytes(INDEX))
    files = [
        file
        for area in ("day_facts", "rollups")
        for e in index[area].values()
        for file in e["files"].values()
    ]
    return all(
        lake.exists(file["key"])
        and len(data := lake.get_bytes(file["key"])) == file["size"]
        and hashlib.sha256(data).hexdigest() == file["sha256"]
        for file in files
    )


# --- ways to damage a file --------------------------------------------------------------------


def xor_one_byte(path: Path) -> None:
    """Flip one byte where the file still reads, with other values: the damage that lied before."""
    original = path.read_bytes()
    clean_rows = _rows(path)
    for offset in range(len(original) // 8, len(original)):
        damaged = bytearray(original)
        damaged[offset] ^= 0x5A
        path.write_bytes(bytes(damaged))
        try:
            if _rows(path) != clean_rows:
                return
        except duckdb.Error:
            pass
    raise AssertionError(f"no byte of {path} changes its values without breaking it")


def garble_64_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    start = len(data) // 3
    data[start : start + 64] = bytes((byte * 7 + 13) % 256 for byte in data[start : start + 64])
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def delete(path: Path) -> None:
    path.unlink()


def replace_with_another_schema(path: Path) -> None:
    pq.write_table(pa.table({"user_id": ["u1"], "first_day": ["2026-11-01"], "extra": [1]}), path)


# --- damaged state ----------------------------------------------------------------------------


HASH = "does not match its recorded size and SHA-256"
SIZE = "not of its recorded size"


@pytest.mark.parametrize(
    ("area", "day", "kind", "damage", "reason"),
    [
        ("rollups", D - timedelta(days=1), "users", xor_one_byte, HASH),
        ("rollups", D - timedelta(days=1), "users", garble_64_bytes, HASH),
        ("rollups", D - timedelta(days=1), "users", truncate, SIZE),
        ("rollups", D - timedelta(days=1), "users", delete, "missing"),
        ("rollups", D - timedelta(days=1), "users", replace_with_another_schema, SIZE),
        ("rollups", D - timedelta(days=1), "orders", xor_one_byte, HASH),
        ("day_facts", D - timedelta(days=7), "launches", xor_one_byte, HASH),
        ("day_facts", D - timedelta(days=1), "launches", garble_64_bytes, HASH),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_a_damaged_state_file_is_rebuilt_from_the_events(
    clean_lake, lake, area, day, kind, damage, reason, caplog: pytest.LogCaptureFixture
):
    # GIVEN the clean lake's document of D, and a copy whose state file (read to compute D) is damaged
    expected = _document(clean_lake, D)
    key = _state_key(lake, area, day, kind)
    damage(lake.path(key))

    # WHEN D is computed again
    with caplog.at_level(logging.WARNING, logger=ENGINE_LOGGER):
        compute_days(lake, APP, [D])

    # THEN its document is the clean one, and a warning names the damaged file and what is wrong
    assert _document(lake, D) == expected
    warnings = [record for record in caplog.records if record.name == ENGINE_LOGGER]
    assert [(record.state_key, record.reason) for record in warnings] == [(key, reason)]
    # AND the state is whole again: the next computation reads it without a warning, with the same numbers
    assert _index_matches_files(lake)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=ENGINE_LOGGER):
        compute_days(lake, APP, [D])
    assert _document(lake, D) == expected
    assert not [record for record in caplog.records if record.name == ENGINE_LOGGER]


def test_a_damaged_state_file_on_s3_is_rebuilt(aws_env, tmp_path, caplog):
    # GIVEN three days computed on S3, then one byte of the rollup read to compute the last flipped
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        storage = S3Storage(boto3.client("s3"), BUCKET)
        days = [date(2026, 11, 1) + timedelta(days=n) for n in range(3)]
        launches = [
            event(
                f"e{n}-{user}",
                "app_launch",
                f"{day.isoformat()}T10:0{user}:00Z",
                f"u{user}",
                entry_point="feed",
            )
            for n, day in enumerate(days)
            for user in range(n + 2)
        ]
        ingest_events(storage, APP, launches, received_at=datetime(2026, 11, 10, tzinfo=UTC))
        compute_days(storage, APP, days)
        expected = without_generated_at(json.loads(storage.get_bytes(metrics_key("app", days[-1]))))
        key = json.loads(storage.get_bytes(INDEX))["rollups"][days[1].isoformat()]["files"]["users"]["key"]
        local = tmp_path / "users.parquet"
        local.write_bytes(storage.get_bytes(key))
        xor_one_byte(local)
        storage.put_bytes(key, local.read_bytes())

        # WHEN the last day is computed again
        with caplog.at_level(logging.WARNING, logger=ENGINE_LOGGER):
            compute_days(storage, APP, [days[-1]])

        # THEN the downloaded copy did not match its hash: the rollup was rebuilt, the numbers are right
        document = without_generated_at(json.loads(storage.get_bytes(metrics_key("app", days[-1]))))
        assert document == expected
        assert [(r.state_key, r.reason) for r in caplog.records if r.name == ENGINE_LOGGER] == [(key, HASH)]


def test_a_state_file_with_its_recorded_hash_but_other_columns_is_rebuilt(clean_lake, lake, caplog):
    # GIVEN a rollup file replaced by a valid Parquet of other columns, and the index edited to match
    # (as an engine of another layout would have written it)
    import hashlib

    day = D - timedelta(days=1)
    key = _state_key(lake, "rollups", day, "users")
    other = lake.path(key)
    row = "SELECT 'u1' AS user_id, 'ios' AS os, DATE '2026-11-01' AS first_day"
    duckdb.connect().execute(f"COPY ({row}) TO '{other}' (FORMAT parquet)")
    index = json.loads(lake.get_bytes(INDEX))
    data = other.read_bytes()
    index["rollups"][day.isoformat()]["files"]["users"].update(
        sha256=hashlib.sha256(data).hexdigest(), size=len(data)
    )
    lake.put_bytes(INDEX, json.dumps(index).encode())

    # WHEN D is computed again
    with caplog.at_level(logging.WARNING, logger=ENGINE_LOGGER):
        compute_days(lake, APP, [D])

    # THEN the file's columns gave it away: the document is the clean one
    assert _document(lake, D) == _document(clean_lake, D)
    [warning] = [record for record in caplog.records if record.name == ENGINE_LOGGER]
    assert warning.state_key == key and warning.reason == "does not have the columns of a users file"


@pytest.mark.parametrize(
    "garbled",
    [
        b"\x00\xff{not json",
        b'{"state_version": 3, "day_facts": {"2026-11-0',
        b'{"state_version": 3, "day_facts": [], "rollups": {}}',
        b'{"state_version": 3, "day_facts": {"2026-11-08": {"source": "x", "files": {}}}, "rollups": {}}',
        b'{"state_version": 3, "day_facts": {}, "rollups": {"2026-11-08": {"source": "x", "files": '
        b'{"users": {"key": "events/app_id=app/x.parquet", "sha256": "' + b"0" * 64 + b'", "size": 1},'
        b' "orders": {"key": "events/app_id=app/y.parquet", "sha256": "' + b"0" * 64 + b'", "size": 1}}}}}',
    ],
    ids=["not-json", "cut", "wrong-shape", "entry-without-files", "keys-outside-state"],
)
def test_a_garbled_state_index_counts_as_empty(clean_lake, lake, garbled, caplog):
    # GIVEN the state index garbled
    lake.put_bytes(INDEX, garbled)
    events = {info.key: info.size for info in lake.list("events/")}

    # WHEN D is computed again
    with caplog.at_level(logging.WARNING, logger=ENGINE_LOGGER):
        compute_days(lake, APP, [D])

    # THEN everything D needs was rebuilt from the events: the document is the clean one
    assert _document(lake, D) == _document(clean_lake, D)
    assert [record.getMessage() for record in caplog.records if record.name == ENGINE_LOGGER] == [
        "state index unreadable; all state is rebuilt from the events"
    ]
    # AND a valid index was written in its place, naming only files that match it
    assert json.loads(lake.get_bytes(INDEX))["state_version"] == 3
    assert _index_matches_files(lake)
    # AND nothing outside the state was touched, whatever keys the garbled index named
    assert {info.key: info.size for info in lake.list("events/")} == events


def test_an_older_state_version_is_rebuilt_without_a_warning(clean_lake, lake, caplog):
    # GIVEN the index of an older state version
    index = json.loads(lake.get_bytes(INDEX))
    lake.put_bytes(INDEX, json.dumps({**index, "state_version": 2}).encode())
    # WHEN D is computed again THEN the document is the clean one, and nothing was called damage
    with caplog.at_level(logging.WARNING, logger=ENGINE_LOGGER):
        compute_days(lake, APP, [D])
    assert _document(lake, D) == _document(clean_lake, D)
    assert not [record for record in caplog.records if record.name == ENGINE_LOGGER]


# --- unreadable events ------------------------------------------------------------------------


def _an_events_file_of(lake: LocalStorage, day: date) -> Path:
    return next(lake.path(info.key) for info in lake.list(f"events/app_id=app/dt={day.isoformat()}/hour=12/"))


def corrupt_a_data_page(path: Path) -> None:
    """Damage a real events file so that its footer reads but its data does not."""
    original = path.read_bytes()
    for offset in range(4, len(original) // 2, 7):
        damaged = bytearray(original)
        damaged[offset : offset + 16] = b"\xff" * 16
        path.write_bytes(bytes(damaged))
        connection = duckdb.connect()
        try:
            connection.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')")
        except duckdb.Error:
            continue
        try:
            connection.execute(f"CREATE TABLE probe AS SELECT * FROM read_parquet('{path}')")
        except duckdb.Error:
            return
    raise AssertionError(f"found no damage of {path} that only its data shows")


def another_schema(path: Path) -> None:
    pq.write_table(
        pa.table({"event_id": ["x"], "event_name": ["app_launch"], "ts": ["2026-11-09T12:00:00Z"]}), path
    )


def not_parquet(path: Path) -> None:
    path.write_bytes(b"this is not a parquet file at all" * 10)


def a_column_of_another_type(path: Path) -> None:
    table = pq.read_table(path)
    index = table.schema.get_field_index("launch_ms")
    pq.write_table(table.set_column(index, "launch_ms", table.column("launch_ms").cast(pa.string())), path)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (another_schema, "does not have the events columns (lacks event_time"),
        (
            a_column_of_another_type,
            "does not have the events columns (lacks launch_ms BIGINT; has launch_ms VARCHAR)",
        ),
        (not_parquet, "is not a readable Parquet file"),
        (truncate, "is not a readable Parquet file"),
        (corrupt_a_data_page, "cannot be read"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_an_unreadable_events_file_fails_the_day_naming_it(lake, damage, reason, capsys):
    # GIVEN an events file of D (the day's events as of the clean run) damaged
    path = _an_events_file_of(lake, D)
    key = path.relative_to(lake.root).as_posix()
    before = lake.get_bytes(metrics_key("app", D))
    damage(path)

    # WHEN D is computed THEN the computation fails, naming the file and what is wrong with it
    with pytest.raises(UnreadableEvents, match=key) as raised:
        compute_days(lake, APP, [D])
    assert raised.value.key == key and raised.value.reason.startswith(reason)
    # AND no document was written from the day's other files
    assert lake.get_bytes(metrics_key("app", D)) == before
    # AND `minidrama compute` says the same and exits 2
    assert main(["compute", "--lake", str(lake.root), "--app", "app", "--date", D.isoformat()]) == 2
    assert f"minidrama: events file {key} {reason}" in capsys.readouterr().err


def test_an_events_file_of_another_schema_is_not_compacted_away(lake):
    # GIVEN an hour partition of D with a file of another schema beside the day's files
    prefix = "events/app_id=app/dt=2026-11-09/hour=12/"
    files_before = {info.key: lake.get_bytes(info.key) for info in lake.list(prefix)}
    stranger = lake.path(prefix + "stranger.parquet")
    another_schema(stranger)

    # WHEN the day is compacted THEN compaction refuses, naming the file, and leaves the partition as it was
    with pytest.raises(UnreadableEvents, match="stranger.parquet"):
        compact_days(lake, APP, [D])
    assert {
        info.key: lake.get_bytes(info.key) for info in lake.list(prefix) if "stranger" not in info.key
    } == files_before


BUCKET = "minidrama-integrity"


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_the_metrics_function_fails_its_run_naming_an_unreadable_events_file(
    aws_env, monkeypatch, lambda_context
):
    # GIVEN an app on S3 with yesterday's events, and an events file of yesterday that is not Parquet
    monkeypatch.setenv("LAKE_BUCKET", BUCKET)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        storage = S3Storage(boto3.client("s3"), BUCKET)
        app = register_app(storage, "drama-a")[0]
        schedule = load_event("metrics_schedule")  # the hour the app's refresh is due
        now = datetime.fromisoformat(schedule["time"].replace("Z", "+00:00"))
        yesterday = app.complete_days(now, 1)[0]
        noon = datetime.combine(yesterday, datetime.min.time(), UTC) + timedelta(hours=12)
        ingest_events(
            storage,
            app,
            [event("e1", "app_launch", noon.isoformat(), "u1", entry_point="feed")],
            received_at=now,
        )
        # beside a good file of its hour: the run fails as it compacts, before it computes anything
        bad = f"events/app_id=drama-a/dt={yesterday.isoformat()}/hour=12/broken.parquet"
        storage.put_bytes(bad, b"PAR1 not really")
        handler = load_handler("metrics")

        # WHEN the schedule fires THEN the run fails (the alarm counts Lambda errors), naming the file
        with pytest.raises(RuntimeError, match=bad):
            handler.lambda_handler(schedule, lambda_context)
        # AND a backfill of that day fails with the metrics error itself
        with pytest.raises(UnreadableEvents, match=bad):
            handler.lambda_handler({"app_id": "drama-a", "dates": [yesterday.isoformat()]}, lambda_context)
        assert not storage.exists(metrics_key("drama-a", yesterday))
