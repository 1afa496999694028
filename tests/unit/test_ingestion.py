"""The shared ingestion pipeline: request limits, quarantine, sinks, and `minidrama ingest` on files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from minidrama import ingestion, queue
from minidrama.cli import main
from minidrama.config import AppConfig, Rates, register_app
from minidrama.ingestion import (
    MAX_BODY_BYTES,
    MAX_EVENTS_PER_REQUEST,
    MalformedRequestError,
    PayloadTooLargeError,
    ingest,
    ingest_events,
    ingest_files,
    parse_request_body,
    quarantine_lines,
    too_deep,
)
from minidrama.lake import LocalStorage
from minidrama.validation import Rejection

RECEIVED_AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
APP = AppConfig("app-1")


def launch(n: int = 0, **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"launch-{n}",
        "event_name": "app_launch",
        "event_time": "2026-11-28T10:15:00.123Z",
        "user_id": f"user-{n}",
        "session_id": f"session-{n}",
        "os": "iOS",
        "region": "us",
        "properties": {"entry_point": "feed"},
    }
    event.update(overrides)
    return event


def without(event: dict[str, Any], field: str) -> dict[str, Any]:
    return {key: value for key, value in event.items() if key != field}


def stored_events(lake: LocalStorage) -> list[dict[str, Any]]:
    if not lake.list("events/"):
        return []
    return ds.dataset(lake.path("events"), format="parquet", partitioning="hive").to_table().to_pylist()


def quarantined(lake: LocalStorage) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for info in lake.list("quarantine/")
        for line in lake.get_bytes(info.key).decode().splitlines()
    ]


# --- request bodies --------------------------------------------------------------------------


def test_a_valid_body_gives_its_events_with_exact_decimals() -> None:
    events = parse_request_body(b'{"events": [{"amount": 4.99}], "sent_at": "ignored"}')
    assert events == [{"amount": Decimal("4.99")}]


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (b"", MalformedRequestError, "not valid JSON"),
        (b"{not json", MalformedRequestError, "not valid JSON"),
        (b"\xff\xfe\x00garbage", MalformedRequestError, "not"),
        (b"[1, 2]", MalformedRequestError, '{"events": [...]}'),
        (b'{"event": []}', MalformedRequestError, '{"events": [...]}'),
        (b'{"events": {"a": 1}}', MalformedRequestError, "must be an array"),
        (b'{"events": [NaN]}', MalformedRequestError, "NaN is not a JSON number"),
        (b'{"events": [Infinity]}', MalformedRequestError, "Infinity"),
        (b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", MalformedRequestError, "nested too deeply"),
        (
            b'{"events": [' + b",".join([b"{}"] * (MAX_EVENTS_PER_REQUEST + 1)) + b"]}",
            PayloadTooLargeError,
            "1001",
        ),
        (b" " * (MAX_BODY_BYTES + 1), PayloadTooLargeError, "over the limit of 1048576 bytes"),
    ],
    ids=[
        "empty",
        "broken",
        "not utf-8",
        "array",
        "no events key",
        "events not an array",
        "NaN",
        "Infinity",
        "deep nesting",
        "too many events",
        "too big",
    ],
)
def test_bad_bodies_are_refused_with_a_clear_reason(
    body: bytes, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message.replace("[", r"\[").replace("]", r"\]").replace("{", r"\{")):
        parse_request_body(body)


def test_the_limits_themselves_are_allowed() -> None:
    events = [{}] * MAX_EVENTS_PER_REQUEST
    body = json.dumps({"events": events}).encode()
    body += b" " * (MAX_BODY_BYTES - len(body))
    assert len(parse_request_body(body)) == MAX_EVENTS_PER_REQUEST


# --- quarantine ------------------------------------------------------------------------------


def test_quarantine_lines_keep_the_reason_and_the_raw_event_exactly() -> None:
    raw = {"event_id": "e1", "amount": Decimal("0.1"), "big": Decimal("0.12345678901234567890123")}
    lines = quarantine_lines("app-1", RECEIVED_AT, [Rejection(3, "e1", ["region: required"], raw)])
    (record,) = [json.loads(line) for line in lines.decode().splitlines()]
    assert record == {
        "received_at": "2026-11-28T12:00:00Z",
        "app_id": "app-1",
        "index": 3,
        "event_id": "e1",
        "errors": ["region: required"],
        "raw": {"event_id": "e1", "amount": 0.1, "big": "0.12345678901234567890123"},
    }


# --- the pipeline ----------------------------------------------------------------------------


def test_accepted_events_reach_parquet_and_rejected_ones_the_quarantine(lake: LocalStorage) -> None:
    # GIVEN a batch with two valid events and one without a region
    events = [launch(1), without(launch(2), "region"), launch(3)]
    # WHEN ingested into a local lake
    result = ingest_events(lake, APP, events, received_at=RECEIVED_AT)
    # THEN the valid ones are in Parquet, typed, and the bad one is quarantined with its reason
    assert result.accepted == 2
    assert [(r.index, r.event_id) for r in result.rejected] == [(1, "launch-2")]
    rows = sorted(stored_events(lake), key=lambda row: row["event_id"])
    assert [row["event_id"] for row in rows] == ["launch-1", "launch-3"]
    assert rows[0]["os"] == "ios" and rows[0]["region"] == "US"
    assert rows[0]["received_at"] == RECEIVED_AT
    (record,) = quarantined(lake)
    assert record["index"] == 1 and record["errors"] == ["region: required"]
    assert record["raw"]["event_id"] == "launch-2"
    assert result.quarantine_key and result.quarantine_key.startswith(
        "quarantine/app_id=app-1/dt=2026-11-28/"
    )


def test_a_repeat_within_a_batch_is_accepted_and_the_first_copy_is_stored(lake: LocalStorage) -> None:
    # GIVEN a batch holding the same event_id twice, the copies differing
    first, second = launch(1), {**launch(1), "user_id": "someone-else"}
    # WHEN ingested
    result = ingest_events(lake, APP, [first, second], received_at=RECEIVED_AT)
    # THEN both count as accepted (a re-send is not an error) and the first copy is the one stored
    assert result.accepted == 2 and result.rejected == []
    assert [row["user_id"] for row in stored_events(lake)] == [first["user_id"]]


def test_a_batch_without_rejections_writes_no_quarantine(lake: LocalStorage) -> None:
    result = ingest_events(lake, APP, [launch(1)], received_at=RECEIVED_AT)
    assert result.quarantine_key is None and lake.list("quarantine/") == []


def test_converted_amounts_use_the_lake_rates(lake: LocalStorage) -> None:
    # GIVEN EUR rates configured in the lake and an order in EUR
    from minidrama.config import save_rates

    save_rates(lake, Rates("USD", {"EUR": Decimal("1.10")}))
    order = launch(
        1,
        event_name="recharge_order",
        session_id=None,
        properties={"order_id": "o1", "amount": 10, "currency": "EUR"},
    )
    # WHEN ingested
    ingest_events(lake, APP, [order], received_at=RECEIVED_AT)
    # THEN the amount is in USD, exactly, and the original is kept
    (row,) = stored_events(lake)
    assert row["amount"] == Decimal("11.000000") and row["original_amount"] == Decimal("10")


def test_an_event_too_big_for_the_queue_is_rejected_alone(
    lake: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue, "MAX_EVENT_BYTES", 2_000)
    events = [
        launch(1),
        launch(2, properties={"entry_point": "feed", "blob": "x" * 3_000}),
        launch(3, os=None),
    ]
    result = ingest_events(lake, APP, events, received_at=RECEIVED_AT)
    assert result.accepted == 1
    assert [(r.index, r.event_id) for r in result.rejected] == [(1, "launch-2"), (2, "launch-3")]
    assert "the limit is 2000 bytes" in result.rejected[0].errors[0]


class BrokenSink:
    def write(self, app_id: str, rows: list[dict[str, Any]], encoded: list[bytes] | None = None) -> None:
        raise OSError("queue unreachable")


def test_a_failing_sink_fails_the_whole_batch(lake: LocalStorage) -> None:
    with pytest.raises(OSError, match="queue unreachable"):
        ingest(lake, BrokenSink(), APP, [launch(1)], received_at=RECEIVED_AT, rates=Rates())


# --- files -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bulk", "stored"),
    [
        # one call: the first copy of launch-1 stands, the second counts as accepted
        (True, ["launch-1", "launch-3"]),
        # per event, each file's chunk is a batch of its own: both copies are stored (readers keep one)
        (False, ["launch-1", "launch-1", "launch-3"]),
    ],
)
def test_ingest_files_counts_lines_and_quarantines_bad_ones(
    lake: LocalStorage, tmp_path: Path, capsys: pytest.CaptureFixture[str], bulk: bool, stored: list[str]
) -> None:
    # GIVEN two NDJSON files: blank lines, a broken line, a non-object line, an invalid event
    first = tmp_path / "a.ndjson"
    first.write_text(
        "\n".join([json.dumps(launch(1)), "", "{broken", "[1, 2]", json.dumps(launch(2, user_id=""))])
        + "\n\n"
    )
    second = tmp_path / "b.ndjson"
    second.write_bytes(json.dumps(launch(3)).encode() + b"\n\xff\xfe\n" + json.dumps(launch(1)).encode())
    # WHEN ingested
    code = ingest_files(lake, APP, [first, second], bulk=bulk)
    # THEN one JSON line counts them (the re-sent launch-1 included), and every bad line is kept
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {"accepted": 3, "rejected": 4}
    assert sorted(row["event_id"] for row in stored_events(lake)) == stored
    records = sorted(quarantined(lake), key=lambda record: (record["source"], record["index"]))
    assert [(Path(r["source"]).name, r["index"]) for r in records] == [
        ("a.ndjson", 3),
        ("a.ndjson", 4),
        ("a.ndjson", 5),
        ("b.ndjson", 2),
    ]
    assert records[0]["raw"] == "{broken" and "not valid JSON" in records[0]["errors"][0]
    assert records[1]["errors"] == ["event: must be a JSON object, got an array"]
    assert records[2]["event_id"] == "launch-2" and records[2]["errors"][0].startswith("user_id:")
    assert "not UTF-8" in records[3]["errors"][0]


def test_an_unreadable_file_exits_2_and_ingests_nothing(
    lake: LocalStorage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.ndjson"
    good.write_text(json.dumps(launch(1)) + "\n")
    code = ingest_files(lake, APP, [good, tmp_path / "missing.ndjson"])
    captured = capsys.readouterr()
    assert code == 2
    assert "cannot read" in captured.err and "missing.ndjson" in captured.err
    assert captured.out == "" and lake.list("events/") == []


def _thousand_good_events(tmp_path: Path) -> Path:
    good = tmp_path / "good.ndjson"
    good.write_text("".join(json.dumps(launch(n)) + "\n" for n in range(1_000)))
    return good


def _named_pipe(tmp_path: Path) -> Path:
    pipe = tmp_path / "events.pipe"
    os.mkfifo(pipe)  # no writer: opening it for reading the ordinary way waits forever
    return pipe


@pytest.mark.parametrize(
    ("make_bad", "reason"),
    [
        (lambda tmp_path: Path("/proc/self/mem"), "a /proc pseudo-file, not a regular file"),
        (lambda tmp_path: Path("/proc/cpuinfo"), "a /proc pseudo-file, not a regular file"),
        (lambda tmp_path: Path("/dev/null"), "a character device, not a regular file"),
        (lambda tmp_path: tmp_path, "a directory, not a regular file"),
        (_named_pipe, "a named pipe (FIFO), not a regular file"),
    ],
    ids=["/proc/self/mem", "/proc/cpuinfo", "a device", "a directory", "a named pipe"],
)
def test_a_file_that_is_not_a_regular_file_is_refused_before_anything_is_stored(
    tmp_path: Path, make_bad: Any, reason: str
) -> None:
    # GIVEN 1,000 good events in a file, then an input that is not a regular file
    good = _thousand_good_events(tmp_path)
    bad = make_bad(tmp_path)
    lake_dir = tmp_path / "lake"

    # WHEN `minidrama ingest` is run on both (in a process of its own, so a hang fails the test)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "minidrama",
            "ingest",
            "--lake",
            str(lake_dir),
            "--app",
            "app-1",
            str(good),
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    # THEN it exits 2 naming the file and why, and stores nothing: no event, no quarantine line
    assert done.returncode == 2, done.stderr
    assert f"cannot read {bad}: {reason} (nothing was ingested)" in done.stderr
    assert done.stdout == ""
    lake = LocalStorage(lake_dir)
    assert lake.list("events/") == [] and lake.list("quarantine/") == []


def test_a_read_error_in_a_later_file_stores_nothing_of_the_earlier_ones(
    lake: LocalStorage, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 1,000 good events, then a file that opens as a regular file but fails when read
    # (/proc/self/mem with the /proc refusal turned off: reading address 0 is an I/O error)
    monkeypatch.setattr(ingestion, "PSEUDO_FILESYSTEMS", ())
    good = _thousand_good_events(tmp_path)
    failing = Path("/proc/self/mem")

    # WHEN ingested
    code = ingest_files(lake, APP, [good, failing])

    # THEN the read error is found by the check that reads every file first: exit 2, nothing stored
    captured = capsys.readouterr()
    assert code == 2
    assert f"cannot read {failing}: Input/output error (nothing was ingested)" in captured.err
    assert captured.out == ""
    assert lake.list("events/") == [] and lake.list("quarantine/") == []


def test_the_cli_ingests_for_an_unregistered_app_with_default_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.ndjson"
    events.write_text(json.dumps(launch(1)) + "\n")
    lake_dir = tmp_path / "lake"
    assert main(["ingest", "--lake", str(lake_dir), "--app", "never-registered", str(events)]) == 0
    assert json.loads(capsys.readouterr().out) == {"accepted": 1, "rejected": 0}
    assert LocalStorage(lake_dir).list("events/app_id=never-registered/")


def test_the_cli_uses_the_registered_currency(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = LocalStorage(tmp_path / "lake")
    register_app(lake, "eur-app", currency="EUR")
    events = tmp_path / "events.ndjson"
    order = launch(
        1, event_name="recharge_order", properties={"order_id": "o", "amount": 5, "currency": "USD"}
    )
    events.write_text(json.dumps(order) + "\n")
    assert main(["ingest", "--lake", str(tmp_path / "lake"), "--app", "eur-app", str(events)]) == 0
    # no USD->EUR rate configured: rejected with that reason
    assert json.loads(capsys.readouterr().out) == {"accepted": 0, "rejected": 1}
    (record,) = quarantined(lake)
    assert "no conversion rate from USD to EUR" in record["errors"][0]


def test_the_ingest_path_does_not_import_pyarrow() -> None:
    # the ingest function's layers have no pyarrow (only the writer's do)
    code = "import sys, minidrama.api, minidrama.ingestion, minidrama.queue; print('pyarrow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        ("[" * 500 + "]" * 500, False),
        ("[" * 501 + "]" * 501, True),
        ("{[" * 250 + "]}" * 250, False),  # alternating objects and arrays count level by level
        ("{[" * 250 + "[]" + "]}" * 250, True),
        ('{"a": "' + "[" * 900 + '"}', False),  # brackets inside a string are text
        ('{"a": "' + "x" * 5000 + '", "b": ' + "[" * 501 + "]" * 501 + "}", True),
        ("[" * 600, False),  # unbalanced: left to the decoder, which refuses it
    ],
)
def test_nesting_deeper_than_500_levels_is_found_wherever_it_is(text: str, deep: bool) -> None:
    assert too_deep(text) is deep and too_deep(text.encode()) is deep


def test_a_body_nested_over_500_levels_is_refused_whatever_the_stack() -> None:
    deep = b'{"events": [{"properties": {"x": ' + b"[" * 600 + b"]" * 600 + b"}}]}"
    with pytest.raises(MalformedRequestError, match=r"nested too deeply \(more than 500 levels"):
        parse_request_body(deep)
    shallow = b'{"events": [{"properties": {"x": ' + b"[" * 490 + b"]" * 490 + b"}}]}"
    assert len(parse_request_body(shallow)) == 1


def test_a_lake_that_fails_midway_is_reported_as_such_and_a_rerun_stores_the_rest(
    lake: LocalStorage, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 1,000 events over several hours, flushed every 300 rows, and a lake whose second
    # Parquet file cannot be written (the disk fills up)
    good = tmp_path / "spread.ndjson"
    good.write_text(
        "".join(
            json.dumps(launch(n, event_time=f"2026-11-28T{n % 5:02d}:10:00Z")) + "\n" for n in range(1_000)
        )
    )
    monkeypatch.setattr(ingestion, "BULK_CHUNK_LINES", 100)
    monkeypatch.setattr(ingestion, "BULK_FLUSH_ROWS", 300)
    put = LocalStorage.put_bytes
    parquet = [0]

    def filling(self: LocalStorage, key: str, data: bytes, content_type: str | None = None) -> None:
        if key.endswith(".parquet"):
            parquet[0] += 1
            if parquet[0] == 2:
                raise OSError(28, "No space left on device")
        put(self, key, data, content_type)

    monkeypatch.setattr(LocalStorage, "put_bytes", filling)
    # WHEN ingested THEN exit 2, naming the lake (not the file) and counting only what was stored
    assert ingest_files(lake, APP, [good]) == 2
    error = capsys.readouterr().err
    assert f"cannot store in the lake {lake.uri}: No space left on device" in error
    assert "stored before the error: 0 accepted, 0 rejected" in error
    stored = ds.dataset(str(lake.path("events")), format="parquet").count_rows()
    assert 0 < stored < 300  # the first file of the first flush, the rest not
    # AND WHEN the disk has room again and the same command runs THEN every event is stored
    monkeypatch.setattr(LocalStorage, "put_bytes", put)
    assert ingest_files(lake, APP, [good]) == 0
    assert json.loads(capsys.readouterr().out) == {"accepted": 1_000, "rejected": 0}
    table = ds.dataset(str(lake.path("events")), format="parquet").to_table(columns=["event_id"])
    assert set(table.column("event_id").to_pylist()) == {f"launch-{n}" for n in range(1_000)}
