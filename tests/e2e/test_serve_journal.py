"""`minidrama serve`'s journal: an acknowledged batch is durable in the journal at once and in the
lake's files within the flush interval; a journal left by a server that was killed is stored
before the next one serves (a record cut short by the kill was never acknowledged, and is
dropped); a batch the journal cannot take is answered 503 and stored nowhere."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from minidrama import journal as journal_module
from minidrama.config import register_app
from minidrama.journal import Accepted, Journal, read_segment
from minidrama.lake import LocalStorage
from minidrama.server import JOURNAL_DIRECTORY, JournalInUseError, LocalServer, serve_in_background
from minidrama.writer import EVENTS_SCHEMA, rows_to_table
from tests.e2e.serving import post_events

APP = "journal-app"
QUARANTINE = "quarantine/app_id=journal-app/dt=2026-11-28/q1.jsonl"


def _events(prefix: str, count: int, *, bad: int = 0) -> list[dict[str, Any]]:
    events = [
        {
            "event_id": f"{prefix}-{number}",
            "event_name": "minis_visit",
            "event_time": f"2026-11-28T{10 + number % 3:02d}:15:00Z",
            "user_id": f"u{number}",
            "os": "ios",
            "region": "US",
        }
        for number in range(count)
    ]
    return events + [{"event_id": f"{prefix}-bad-{n}", "event_name": "minis_visit"} for n in range(bad)]


def _post(url: str, key: str, events: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    return post_events(url, key, APP, events)


def _stored(lake: LocalStorage) -> tuple[list[str], int, list[str]]:
    """The event ids in the lake's files, how many files, the quarantined event ids."""
    files = [info.key for info in lake.list("events/")]
    ids = (
        sorted(
            ds.dataset([str(lake.path(key)) for key in files], format="parquet")
            .to_table()["event_id"]
            .to_pylist()
        )
        if files
        else []
    )
    quarantined = sorted(
        json.loads(line)["event_id"]
        for info in lake.list("quarantine/")
        for line in lake.get_bytes(info.key).decode().splitlines()
    )
    return ids, len(files), quarantined


def _segments(lake: LocalStorage) -> list[Path]:
    return sorted((lake.root / JOURNAL_DIRECTORY).glob("*.journal"))


def test_acknowledged_batches_are_journaled_and_stored_together_within_the_interval(tmp_path: Path) -> None:
    lake = LocalStorage(tmp_path / "lake")
    _app, key = register_app(lake, APP)
    with serve_in_background(lake, flush_seconds=1.5) as url:
        # GIVEN three batches acknowledged one after another (two invalid events in the last)
        answers = [
            _post(url, key, _events(f"b{batch}", 40, bad=2 if batch == 2 else 0)) for batch in range(3)
        ]
        assert [status for status, _body in answers] == [202, 202, 202]
        # THEN at once they are in the journal (synced), not yet in the lake's files
        segments = _segments(lake)
        assert len(segments) == 1
        held, _rest = read_segment(segments[0])
        assert sum(outcome.table.num_rows for outcome in held) == 120
        assert _stored(lake) == ([], 0, [])
        # AND within the interval they are stored together: one file per hour partition, the
        # quarantine beside them, and the journal's segment gone
        deadline = time.monotonic() + 10
        while _segments(lake) and time.monotonic() < deadline:
            time.sleep(0.05)
        ids, files, quarantined = _stored(lake)
        assert _segments(lake) == []
        assert ids == sorted(f"b{batch}-{number}" for batch in range(3) for number in range(40))
        assert files == 3
        assert quarantined == ["b2-bad-0", "b2-bad-1"]


@pytest.mark.parametrize("flush_seconds", [1.0, None])
def test_a_journal_left_by_a_killed_server_is_stored_before_the_next_serves(
    tmp_path: Path, flush_seconds: float | None
) -> None:
    lake = LocalStorage(tmp_path / "lake")
    register_app(lake, APP)
    # GIVEN a journal as a killed server leaves it: two acknowledged records, then a third that
    # the kill cut short (never acknowledged)
    journal = Journal(lake.root / JOURNAL_DIRECTORY)
    rows = [
        {**event, "event_time": _time(event["event_time"]), "received_at": _time("2026-11-28T12:00:00Z")}
        for event in _events("kept", 10)
    ]
    journal.append([Accepted(APP, rows_to_table(rows[:6]), (QUARANTINE, b'{"event_id": "q-1"}\n'))])
    journal.append([Accepted(APP, rows_to_table(rows[6:]), None)])
    journal.append([Accepted(APP, rows_to_table([{**rows[0], "event_id": "torn"}]), None)])
    segment = journal.rotate()[0]
    data = segment.read_bytes()
    segment.write_bytes(data[:-7])  # the last record cut short
    # WHEN a server starts on the lake (journaling, or storing each batch before its 202)
    with serve_in_background(lake, flush_seconds=flush_seconds):
        # THEN before it serves, the acknowledged rows are in the lake's files, the torn one not,
        # and the journal is empty
        ids, _files, quarantined = _stored(lake)
        assert ids == sorted(f"kept-{number}" for number in range(10))
        assert _segments(lake) == []
        # (the segment, which ended with bytes it could not read, is kept aside for a person)
        assert [path.name for path in (lake.root / JOURNAL_DIRECTORY).glob("*.damaged")] == [
            segment.with_suffix(".damaged").name
        ]
        assert quarantined == ["q-1"]


def test_a_damaged_record_ends_its_segment(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    table = EVENTS_SCHEMA.empty_table()
    journal.append([Accepted(APP, table, ("q/a.jsonl", b"a\n"))])
    journal.append([Accepted(APP, table, ("q/b.jsonl", b"b\n"))])
    segment = journal.rotate()[0]
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF  # the second record's last byte
    segment.write_bytes(bytes(data))
    outcomes, rest = read_segment(segment)
    assert [outcome.quarantine for outcome in outcomes] == [("q/a.jsonl", b"a\n")] and rest


def test_a_zero_filled_end_ends_its_segment(tmp_path: Path) -> None:
    # GIVEN a segment whose end a power loss left zero-filled (the file grew, its data did not land)
    journal = Journal(tmp_path / "journal")
    journal.append([Accepted(APP, EVENTS_SCHEMA.empty_table(), ("q/a.jsonl", b"a\n"))])
    segment = journal.rotate()[0]
    segment.write_bytes(segment.read_bytes() + bytes(4096))
    # THEN the record before it is read, and the zeros end the segment
    outcomes, rest = read_segment(segment)
    assert [outcome.quarantine for outcome in outcomes] == [("q/a.jsonl", b"a\n")] and rest


def test_a_second_journaled_server_on_the_lake_is_refused(tmp_path: Path) -> None:
    lake = LocalStorage(tmp_path / "lake")
    _app, key = register_app(lake, APP)
    with serve_in_background(lake, flush_seconds=30.0) as url:
        assert _post(url, key, _events("first", 3))[0] == 202
        # WHEN another journaled server starts on the same lake THEN it is refused, and the
        # first one's journal (holding its acknowledged batch) is left alone
        with pytest.raises(JournalInUseError, match="another minidrama serve is running"):
            LocalServer(lake, flush_seconds=1.0)
        assert len(_segments(lake)) == 1
        # AND one that stores before answering starts, and leaves the journal alone too
        LocalServer(lake)._writer.close()
        assert len(_segments(lake)) == 1
    assert _stored(lake)[0] == sorted(f"first-{number}" for number in range(3))


def test_a_batch_the_journal_cannot_take_is_answered_503_and_stored_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = LocalStorage(tmp_path / "lake")
    _app, key = register_app(lake, APP)
    sync = journal_module.os.fdatasync
    failing = [True]

    def fdatasync(descriptor: int) -> None:
        if failing[0]:
            raise OSError(28, "No space left on device")
        sync(descriptor)

    monkeypatch.setattr(journal_module.os, "fdatasync", fdatasync)
    with serve_in_background(lake, flush_seconds=0.2) as url:
        # GIVEN a disk that refuses the journal's sync WHEN a batch is posted THEN it is a 503
        status, body = _post(url, key, _events("full", 5))
        assert status == 503 and body["error"] == "unavailable"
        # AND WHEN the disk recovers and the client retries THEN the retry is stored once
        failing[0] = False
        assert _post(url, key, _events("full", 5))[0] == 202
    ids, _files, _quarantined = _stored(lake)
    assert ids == sorted(f"full-{number}" for number in range(5))
    assert _segments(lake) == []


def _time(text: str) -> Any:
    return pa.scalar(text).cast(pa.timestamp("us", tz="UTC")).as_py()


def test_compute_says_when_the_journal_holds_events_not_yet_in_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from minidrama.cli import main
    from minidrama.config import AppConfig
    from minidrama.ingestion import ingest_events

    lake = LocalStorage(tmp_path / "lake")
    register_app(lake, APP)
    ingest_events(lake, AppConfig(APP), _events("in-files", 3), received_at=_time("2026-11-28T12:00:00Z"))
    arguments = ["compute", "--lake", str(lake.root), "--app", APP, "--date", "2026-11-28"]
    # GIVEN an empty journal WHEN the day is computed THEN nothing is said about it
    assert main(arguments) == 0
    assert "journal" not in capsys.readouterr().err
    # GIVEN a journal holding a batch (its server killed) WHEN computed again THEN it says so
    Journal(lake.root / JOURNAL_DIRECTORY).append(
        [Accepted(APP, EVENTS_SCHEMA.empty_table(), ("q/x.jsonl", b"\n"))]
    )
    assert main(arguments) == 0
    assert "journal holds events not yet in the lake's files" in capsys.readouterr().err
