"""App settings, rates and the CLI's answers to bad input (clear message, exit 2, nothing written)."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from minidrama.cli import main
from minidrama.config import (
    ConfigError,
    api_key_matches,
    app_or_default,
    load_apps,
    load_rates,
    register_app,
)
from minidrama.lake import RATES_CONFIG_KEY, LocalStorage
from minidrama.server import serve_in_background


@pytest.mark.parametrize(
    ("app_id", "valid"),
    [
        ("drama", True),
        ("my-drama_2.prod", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("", False),
        ("a/b", False),
        ("..", False),
        ("-lead", False),
        ("nl\n", False),
    ],
)
def test_app_ids(lake, app_id, valid):
    if valid:
        assert app_or_default(lake, app_id).app_id == app_id
    else:
        with pytest.raises(ConfigError, match="app_id"):
            app_or_default(lake, app_id)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone 'Mars/Olympus'"),
        ({"currency": "ABC"}, "currency 'ABC'"),
        ({"currency": "US"}, "currency 'US'"),
        ({"recipients": ["team@studio.example", "not-an-address"]}, "recipient 'not-an-address'"),
    ],
)
def test_bad_app_settings_are_refused_and_nothing_is_stored(lake, settings, message):
    with pytest.raises(ConfigError, match=message):
        register_app(lake, "drama", **settings)
    assert load_apps(lake) == {}


def test_registering_again_keeps_settings_and_issues_a_new_key(lake):
    first, first_key = register_app(lake, "drama", timezone="Asia/Manila", currency="eur")
    second, second_key = register_app(lake, "drama", recipients=["a@studio.example"])
    assert (second.timezone, second.currency, second.recipients) == (
        "Asia/Manila",
        "EUR",
        ["a@studio.example"],
    )
    assert first_key != second_key
    assert first_key not in lake.get_bytes("config/apps.json").decode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"rates": {"EUR": "abc"}}', "the rate of EUR must be a positive number"),
        (b'{"rates": {"EUR": -1}}', "the rate of EUR must be a positive number"),
        (b'{"rates": ["EUR"]}', "must be JSON like"),
    ],
)
def test_bad_rates_are_named(lake, body, message):
    lake.put_bytes(RATES_CONFIG_KEY, body)
    with pytest.raises(ConfigError, match=message):
        load_rates(lake)


def test_rates_convert_through_the_base(lake):
    lake.put_bytes(
        RATES_CONFIG_KEY, json.dumps({"base": "USD", "rates": {"EUR": "1.08", "JPY": 0.0067}}).encode()
    )
    rates = load_rates(lake)
    assert rates.convert(Decimal(100), "EUR", "USD") == Decimal("108")
    assert rates.convert(Decimal("1.08"), "USD", "EUR") == Decimal(1)
    assert rates.convert(Decimal(100), "GBP", "USD") is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compute", "--app", "a/b", "--date", "2026-11-01"], "app_id 'a/b'"),
        (["ingest", "--app", "drama", "missing.ndjson"], "missing.ndjson"),
        (["report", "--app", "drama", "--date", "2026-11-01", "--email-to", "bad"], "recipient 'bad'"),
        (["apps", "add", "drama", "--currency", "ABC"], "currency 'ABC'"),
    ],
)
def test_cli_refuses_bad_input_with_a_message_and_exit_2(tmp_path, capsys, argv, message):
    lake = tmp_path / "lake"
    lake.mkdir()
    code = main([*argv, "--lake", str(lake)])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (lake / "events").exists()


def test_cli_compute_with_to_before_date_is_refused(tmp_path, capsys):
    code = main(
        ["compute", "--lake", str(tmp_path), "--app", "drama", "--date", "2026-11-02", "--to", "2026-11-01"]
    )
    assert code == 2
    assert "--to must not be before --date" in capsys.readouterr().err


# --- apps add / set / rotate-key (SPEC 5) --------------------------------------------------------


LAUNCH = {
    "event_id": "e-1",
    "event_name": "app_launch",
    "event_time": "2026-11-28T10:15:00Z",
    "user_id": "u-1",
    "session_id": "s-1",
    "os": "ios",
    "region": "US",
    "properties": {"entry_point": "feed"},
}


def _cli(capsys, lake, *argv: str) -> tuple[int, str, str]:
    """Exit code, stdout, stderr of the CLI (argparse's own refusals exit 2 too)."""
    try:
        code = main([*argv, "--lake", str(lake)])
    except SystemExit as stopped:
        code = int(stopped.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_adding_an_app_twice_changes_nothing_and_exits_2(tmp_path, capsys):
    lake = tmp_path / "lake"
    code, out, _err = _cli(capsys, lake, "apps", "add", "drama", "--timezone", "Asia/Manila")
    assert code == 0
    first_key = json.loads(out)["api_key"]
    stored = (lake / "config" / "apps.json").read_bytes()

    code, out, err = _cli(capsys, lake, "apps", "add", "drama", "--timezone", "UTC")

    assert code == 2 and out == ""
    assert "app 'drama' is already registered" in err and "minidrama apps set drama" in err
    assert (lake / "config" / "apps.json").read_bytes() == stored
    assert api_key_matches(load_apps(LocalStorage(lake))["drama"], first_key)


def test_set_changes_only_the_settings_given_and_keeps_the_key(tmp_path, capsys):
    lake = tmp_path / "lake"
    _code, out, _err = _cli(
        capsys, lake, "apps", "add", "drama", "--email", "a@studio.example", "--reports", "daily"
    )
    key = json.loads(out)["api_key"]

    code, out, _err = _cli(
        capsys,
        lake,
        "apps",
        "set",
        "drama",
        "--add-email",
        "b@studio.example",
        "--remove-email",
        "a@studio.example",
        "--report-hour",
        "7",
        "--reports",
        "daily,weekly,monthly",
    )

    assert code == 0
    app = load_apps(LocalStorage(lake))["drama"]
    assert json.loads(out) == app.public()
    assert (app.timezone, app.currency, app.recipients) == ("UTC", "USD", ["b@studio.example"])
    assert (app.report_hour, app.reports) == (7, ["daily", "weekly", "monthly"])
    assert api_key_matches(app, key)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["apps", "set", "ghost", "--report-hour", "7"], "no app 'ghost' is registered"),
        (["apps", "rotate-key", "ghost"], "no app 'ghost' is registered"),
        (["apps", "set", "drama", "--report-hour", "24"], "'24' is not an hour of the day"),
        (["apps", "set", "drama", "--reports", "daily,yearly"], "'yearly' is not a report"),
        (
            ["apps", "set", "drama", "--remove-email", "x@studio.example"],
            "'x@studio.example' is not a recipient",
        ),
        (["apps", "set", "drama", "--timezone", "Mars/Olympus"], "timezone 'Mars/Olympus'"),
    ],
)
def test_set_and_rotate_key_refuse_bad_input_and_change_nothing(tmp_path, capsys, argv, message):
    lake = tmp_path / "lake"
    _cli(capsys, lake, "apps", "add", "drama")
    stored = (lake / "config" / "apps.json").read_bytes()

    code, _out, err = _cli(capsys, lake, *argv)

    assert code == 2 and message in err
    assert (lake / "config" / "apps.json").read_bytes() == stored


def test_rotate_key_issues_a_new_key_and_the_old_one_stops_working(tmp_path, capsys):
    lake = tmp_path / "lake"
    _code, out, _err = _cli(capsys, lake, "apps", "add", "drama", "--currency", "EUR")
    old_key = json.loads(out)["api_key"]

    code, out, _err = _cli(capsys, lake, "apps", "rotate-key", "drama")

    assert code == 0
    new_key = json.loads(out)["api_key"]
    app = load_apps(LocalStorage(lake))["drama"]
    assert new_key != old_key and api_key_matches(app, new_key) and not api_key_matches(app, old_key)
    assert app.currency == "EUR"


def test_after_apps_set_the_old_key_still_ingests(tmp_path, capsys):
    # GIVEN a registered app, its key, and the local server
    lake = tmp_path / "lake"
    _code, out, _err = _cli(capsys, lake, "apps", "add", "drama")
    key = json.loads(out)["api_key"]
    # WHEN someone adds a recipient
    assert _cli(capsys, lake, "apps", "set", "drama", "--add-email", "new@studio.example")[0] == 0
    # THEN an SDK holding the old key still gets 202
    event = LAUNCH
    with serve_in_background(LocalStorage(lake)) as url:
        request = urllib.request.Request(
            f"{url}/v1/apps/drama/events",
            data=json.dumps({"events": [event]}).encode(),
            headers={"x-api-key": key, "content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 202 and json.loads(answer.read())["accepted"] == 1


# --- never a blank report by mistake ------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["compute", "--app", "typo", "--date", "2026-11-01"],
            "app 'typo' is not registered and has no events",
        ),
        (
            ["report", "--app", "typo", "--date", "2026-11-01"],
            "app 'typo' is not registered and has no metrics",
        ),
        (["compute", "--app", "drama", "--date", "2099-01-01"], "2099-01-01 is in the future in UTC"),
        (["compute", "--app", "drama", "--date", "2026-11-01", "--to", "2099-01-01"], "is in the future"),
        (["report", "--app", "drama", "--date", "2099-01-01"], "2099-01-01 is in the future in UTC"),
    ],
)
def test_compute_and_report_refuse_what_would_give_a_blank_document(tmp_path, capsys, argv, message):
    lake = tmp_path / "lake"
    _cli(capsys, lake, "apps", "add", "drama")
    before = sorted(path.relative_to(lake) for path in lake.rglob("*"))

    code, out, err = _cli(capsys, lake, *argv)

    assert code == 2 and out == "" and message in err, err
    assert sorted(path.relative_to(lake) for path in lake.rglob("*")) == before


def test_report_refuses_today_which_has_not_ended(tmp_path, capsys):
    lake = tmp_path / "lake"
    _cli(capsys, lake, "apps", "add", "drama", "--timezone", "Asia/Kathmandu")
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Kathmandu")).date()

    code, _out, err = _cli(capsys, lake, "report", "--app", "drama", "--date", today.isoformat())

    assert code == 2 and f"{today} has not ended yet in Asia/Kathmandu" in err


@pytest.mark.parametrize("command", ["compute", "report", "query", "export"])
def test_a_lake_path_that_does_not_exist_is_named(tmp_path, capsys, command):
    missing = tmp_path / "no-such-lake"
    dates = (
        ["--date", "2026-11-01"]
        if command in ("compute", "report")
        else ["--from", "2026-11-01", "--to", "2026-11-02"]
    )

    code, _out, err = _cli(capsys, missing, command, "--app", "drama", *dates)

    assert code == 2 and f"the lake {missing} does not exist" in err
    assert not missing.exists()


def test_an_unregistered_app_with_events_is_still_computed(tmp_path, capsys):
    # GIVEN events of an app nobody registered (the operator's trusted path)
    lake = tmp_path / "lake"
    events = tmp_path / "events.ndjson"
    events.write_text(json.dumps(LAUNCH) + "\n")
    assert _cli(capsys, lake, "ingest", "--app", "unlisted", str(events))[0] == 0
    # WHEN it is computed THEN it works, with the default settings
    code, out, _err = _cli(capsys, lake, "compute", "--app", "unlisted", "--date", "2026-11-28")
    assert code == 0 and "dt=2026-11-28/metrics.json" in out
