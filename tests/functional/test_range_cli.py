"""``minidrama query`` and ``minidrama export``: the documents, their CSV, and clear answers to bad input."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

import pytest

from minidrama.cli import main
from minidrama.config import AppConfig
from minidrama.metrics import compute_days
from tests.metrics_support import RANGE_VALIDATOR, event, ingest

APP = AppConfig("app")
FIRST = date(2026, 11, 9)
LAST = date(2026, 11, 12)
DAYS = [FIRST + timedelta(days=n) for n in range(4)]


@pytest.fixture
def computed(lake):
    """Four computed days: ios users every day, an android user on the 10th, orders on two days."""
    events = []
    for index, day in enumerate(DAYS):
        stamp = f"{day.isoformat()}T10:00:00Z"
        events.append(event(f"l{index}", "app_launch", stamp, "u1", entry_point="feed, then search"))
        events.append(event(f"s{index}", "session_end", stamp, "u1", session=f"s-l{index}", duration_ms=1000))
    events.append(
        event("l-a", "app_launch", "2026-11-10T11:00:00Z", "u2", os="android", region="GB", entry_point="ad")
    )
    events.append(
        event(
            "o1", "recharge_order", "2026-11-10T10:05:00Z", "u1", order_id="o1", amount=4.99, currency="USD"
        )
    )
    events.append(
        event(
            "o2", "recharge_order", "2026-11-12T10:05:00Z", "u1", order_id="o2", amount=0.99, currency="USD"
        )
    )
    ingest(lake, events, APP)
    compute_days(lake, APP, DAYS)
    return lake


def _run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as stop:  # argparse's own answer to a bad argument
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _lake_args(lake):
    return ["--lake", str(lake.root), "--app", "app"]


def _value_at(document, segment, module, metric, key):
    value = document["segments"][segment][module][metric]
    for part in key.split(".") if key else []:
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def test_query_prints_the_range_document(computed, capsys):
    code, out, _ = _run(capsys, "query", *_lake_args(computed), "--from", "2026-11-09", "--to", "2026-11-12")

    assert code == 0
    document = json.loads(out)
    RANGE_VALIDATOR.validate(document)
    assert (document["kind"], document["from"], document["to"]) == ("range", "2026-11-09", "2026-11-12")
    assert list(document["segments"]) == ["all", "os:android", "os:ios", "region:GB", "region:US"]
    assert document["segments"]["all"]["dashboard"]["active_users"] == 2
    assert document["segments"]["all"]["iap_orders"]["all"]["gmv"] == 5.98


def test_query_segment_keeps_only_the_named_segments(computed, capsys):
    code, out, _ = _run(
        capsys,
        "query",
        *_lake_args(computed),
        "--from",
        "2026-11-09",
        "--to",
        "2026-11-12",
        "--segment",
        "os:ios",
    )

    assert code == 0
    assert list(json.loads(out)["segments"]) == ["os:ios"]


def test_query_csv_has_one_row_per_scalar_with_its_path(computed, capsys):
    # GIVEN the JSON document and the CSV of the same range
    args = [*_lake_args(computed), "--from", "2026-11-09", "--to", "2026-11-12"]
    _, json_out, _ = _run(capsys, "query", *args)
    code, csv_out, _ = _run(capsys, "query", *args, "--format", "csv")
    document = json.loads(json_out)

    # THEN the CSV is RFC 4180 (CRLF), has the header, and every row's value is the document's value
    assert code == 0
    assert csv_out.startswith("segment,module,metric,key,value\r\n")
    rows = list(csv.reader(io.StringIO(csv_out, newline="")))
    assert rows[0] == ["segment", "module", "metric", "key", "value"]
    for segment, module, metric, key, value in rows[1:]:
        expected = _value_at(document, segment, module, metric, key)
        if expected is None:
            assert value == ""
        elif isinstance(expected, str):
            assert value == expected
        else:
            assert json.loads(value) == expected
    # AND it names values as the contract's examples do
    assert ["all", "dashboard", "active_users", "", "2"] in rows
    assert ["all", "funnel", "recharge", "8.pv", "2"] in rows
    assert ["all", "retention", "active", "cohorts.0.d1.rate", "1.0"] in rows
    # AND a key with a comma is quoted, not split
    assert 'all,entry_points,"feed, then search",active_users,1\r\n' in csv_out
    assert ["os:android", "dashboard", "median_duration_per_user_ms", "", "0.0"] in rows


def test_query_writes_to_a_file(computed, capsys, tmp_path):
    out = tmp_path / "range.csv"
    code, stdout, err = _run(
        capsys,
        "query",
        *_lake_args(computed),
        "--from",
        "2026-11-10",
        "--to",
        "2026-11-10",
        "--format",
        "csv",
        "--out",
        str(out),
    )

    assert (code, stdout) == (0, "")
    assert str(out) in err
    assert out.read_bytes().startswith(b"segment,module,metric,key,value\r\nall,dashboard,total_users,,2\r\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "2026-11-31", "--to", "2026-12-01"], "'2026-11-31' is not a date like 2026-11-28"),
        (["--from", "yesterday", "--to", "2026-12-01"], "'yesterday' is not a date"),
        (
            ["--from", "2026-11-12", "--to", "2026-11-09"],
            "starts on 2026-11-12, after its last day 2026-11-09",
        ),
        (
            ["--from", "2026-11-09", "--to", "2026-11-12", "--segment", "os:windows"],
            "segment 'os:windows' has no events in 2026-11-09..2026-11-12",
        ),
        (["--from", "2026-11-08", "--to", "2026-11-12"], "day was never computed for app 'app': 2026-11-08;"),
        (
            ["--from", "2026-11-11", "--to", "2026-11-14"],
            "days were never computed for app 'app': 2026-11-13, 2026-11-14; run: minidrama compute"
            " --app app --date 2026-11-13 --to 2026-11-14",
        ),
    ],
)
def test_query_bad_input_exits_2_naming_what_is_wrong(computed, capsys, argv, message):
    code, out, err = _run(capsys, "query", *_lake_args(computed), *argv)

    assert code == 2
    assert out == ""
    assert message in err


def test_query_of_an_app_with_nothing_computed_names_the_days(lake, capsys):
    lake.root.mkdir(parents=True)  # a lake that exists, with nothing computed in it
    code, _, err = _run(capsys, "query", *_lake_args(lake), "--from", "2026-11-01", "--to", "2026-11-30")

    assert code == 2
    assert "days were never computed for app 'app': 2026-11-01, 2026-11-02" in err
    assert "and 25 more" in err


def test_export_prints_one_row_per_day_and_one_column_per_metric(computed, capsys):
    code, out, _ = _run(
        capsys,
        "export",
        *_lake_args(computed),
        "--from",
        "2026-11-09",
        "--to",
        "2026-11-12",
        "--metric",
        "dashboard.active_users",
        "iap_orders.all.gmv",
        "performance",
    )

    assert code == 0
    assert out.split("\r\n") == [
        "date,dashboard.active_users,iap_orders.all.gmv,performance.loading_success_rate,"
        "performance.average_launch_ms",
        "2026-11-09,1,0.0,1.0,",
        "2026-11-10,2,4.99,1.0,",
        "2026-11-11,1,0.0,1.0,",
        "2026-11-12,1,0.99,1.0,",
        "",
    ]


def test_export_by_default_has_every_series_and_no_breakdown_by_data_values(computed, capsys):
    code, out, _ = _run(capsys, "export", *_lake_args(computed), "--from", "2026-11-09", "--to", "2026-11-12")

    header, *rows = list(csv.reader(io.StringIO(out, newline="")))
    assert code == 0
    assert len(rows) == 4
    assert header[0] == "date"
    for column in (
        "dashboard.total_users",
        "behavior.median_duration_per_session_ms",
        "retention.new.d1.rate",
        "funnel.redeem.8.pv",
        "iap_users.ltv.d7.value",
        "iap_orders.new_payers.recharge_orders",
        "performance.average_launch_ms",
    ):
        assert column in header
    assert not [column for column in header if column.split(".")[0] in ("profile", "device", "entry_points")]
    assert not [column for column in header if "cohort_date" in column or column.endswith(".stage")]


def test_export_of_a_segment_leaves_days_without_it_empty(computed, capsys):
    code, out, _ = _run(
        capsys,
        "export",
        *_lake_args(computed),
        "--from",
        "2026-11-09",
        "--to",
        "2026-11-11",
        "--segment",
        "os:android",
        "--metric",
        "dashboard.active_users",
    )

    assert code == 0
    assert out.split("\r\n") == [
        "date,dashboard.active_users",
        "2026-11-09,",
        "2026-11-10,1",
        "2026-11-11,",
        "",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--metric", "dashboard.active_user"], "metric 'dashboard.active_user' names no value"),
        (["--segment", "region:FR"], "segment 'region:FR' has no events on any of these days"),
        (["--to", "2026-11-13"], "day was never computed for app 'app': 2026-11-13"),
    ],
)
def test_export_bad_input_exits_2_naming_what_is_wrong(computed, capsys, argv, message):
    base = {"--from": "2026-11-09", "--to": "2026-11-12"}
    pairs = dict(zip(argv[::2], argv[1::2], strict=True))
    options = [item for key, value in {**base, **pairs}.items() for item in (key, value)]
    code, out, err = _run(capsys, "export", *_lake_args(computed), *options)

    assert code == 2
    assert out == ""
    assert message in err


def _facts_files(lake, day):
    return sorted((lake.root / "facts").glob(f"*/app_id=app/dt={day.isoformat()}/*.parquet"))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda path: path.write_bytes(path.read_bytes()[:-1] + bytes([path.read_bytes()[-1] ^ 1])),
            "SHA-256",
        ),
        (lambda path: path.unlink(), "is missing"),
    ],
    ids=["one byte changed", "deleted"],
)
def test_a_damaged_facts_file_is_never_read_and_a_recompute_mends_it(computed, capsys, damage, message):
    # GIVEN one facts file of 11-10 damaged
    args = ["query", *_lake_args(computed), "--from", "2026-11-09", "--to", "2026-11-12"]
    _, good, _ = _run(capsys, *args)
    damage(_facts_files(computed, date(2026, 11, 10))[0])

    # WHEN the range is queried, THEN it fails naming the file, with no document
    code, out, err = _run(capsys, *args)
    assert (code, out) == (2, "")
    assert "facts/" in err and "dt=2026-11-10" in err and message in err

    # WHEN the day is recomputed, THEN the range document is whole again
    assert _run(capsys, "compute", *_lake_args(computed), "--date", "2026-11-10")[0] == 0
    code, mended, _ = _run(capsys, *args)
    assert code == 0
    assert json.loads(mended)["segments"] == json.loads(good)["segments"]


def test_an_unreadable_facts_index_is_an_error_until_the_days_are_recomputed(computed, capsys):
    index = computed.root / "facts" / "_index" / "app_id=app" / "index.json"
    index.write_text('{"version": 1, "timezone": "UTC", "days": {"2026-11-')
    args = ["query", *_lake_args(computed), "--from", "2026-11-09", "--to", "2026-11-12"]

    code, _, err = _run(capsys, *args)
    assert code == 2 and "facts index" in err and "cannot be read" in err

    assert (
        _run(capsys, "compute", *_lake_args(computed), "--date", "2026-11-09", "--to", "2026-11-12")[0] == 0
    )
    assert _run(capsys, *args)[0] == 0
