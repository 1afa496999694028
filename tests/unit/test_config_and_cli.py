"""App settings, rates and the CLI's answers to bad input (clear message, exit 2, nothing written)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from minidrama.cli import main
from minidrama.config import ConfigError, app_or_default, load_apps, load_rates, register_app
from minidrama.lake import RATES_CONFIG_KEY


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
