"""Which reports an hourly run asks for: each day once, in the hour its report hour begins, local time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from minidrama.config import AppConfig, add_app
from minidrama.lake import LocalStorage
from minidrama.report.period import ReportPeriod
from minidrama.report.publish import report_requests, write_status

SCHEDULED = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}


def _run(storage: LocalStorage, run_at: datetime) -> list[tuple[str, date]]:
    event = {**SCHEDULED, "time": run_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return [(request.app.app_id, request.day) for request in report_requests(storage, event, now=run_at)]


@pytest.mark.parametrize(
    ("timezone", "start", "report_hour"),
    [
        ("UTC", datetime(2026, 11, 27, 0, 20, tzinfo=UTC), 8),
        ("America/Los_Angeles", datetime(2026, 3, 7, 0, 20, tzinfo=UTC), 8),  # clocks spring forward Mar 8
        ("America/Los_Angeles", datetime(2026, 3, 7, 0, 20, tzinfo=UTC), 2),  # ... through 02:00-03:00
        ("America/Los_Angeles", datetime(2026, 10, 31, 0, 20, tzinfo=UTC), 8),  # and fall back Nov 1
        ("America/Los_Angeles", datetime(2026, 10, 31, 0, 20, tzinfo=UTC), 1),  # ... 01:00-02:00 twice
        ("Asia/Kolkata", datetime(2026, 11, 27, 0, 20, tzinfo=UTC), 8),  # UTC+5:30
        ("Asia/Kathmandu", datetime(2026, 11, 27, 0, 20, tzinfo=UTC), 8),  # UTC+5:45
        ("Asia/Kathmandu", datetime(2026, 11, 27, 0, 20, tzinfo=UTC), 0),  # local midnight
    ],
)
def test_each_day_is_asked_for_once_in_the_hour_its_report_hour_begins(
    tmp_path, timezone: str, start: datetime, report_hour: int
) -> None:
    # GIVEN an app with its report hour
    storage = LocalStorage(tmp_path / "lake")
    add_app(storage, "app", timezone=timezone, report_hour=report_hour)
    zone = ZoneInfo(timezone)
    # WHEN the schedule fires every hour for three days
    asked: dict[date, list[datetime]] = {}
    for hour in range(72):
        run_at = start + timedelta(hours=hour)
        for _app, day in _run(storage, run_at):
            asked.setdefault(day, []).append(run_at)
    # THEN each day was asked for once, on the next local day, in the first run at or after the
    # report hour (the hour itself, or the one after a skipped hour)
    assert len(asked) >= 2 and all(len(runs) == 1 for runs in asked.values()), asked
    for day, [run_at] in asked.items():
        local = run_at.astimezone(zone)
        assert local.date() == day + timedelta(days=1)
        before = (run_at - timedelta(hours=1)).astimezone(zone)  # the previous run, in local time
        threshold = datetime.combine(local.date(), datetime.min.time()).replace(hour=report_hour)
        assert before.replace(tzinfo=None) < threshold <= local.replace(tzinfo=None), (day, local)


def test_a_report_waiting_for_its_metrics_is_asked_for_again_that_day_only(tmp_path) -> None:
    storage = LocalStorage(tmp_path / "lake")
    add_app(storage, "app")
    day = date(2026, 11, 28)
    assert _run(storage, datetime(2026, 11, 29, 8, 20, tzinfo=UTC)) == [("app", day)]
    # GIVEN its run found no metrics
    write_status(storage, "app", day, {"status": "incomplete", "reason": "no metrics document at ..."})
    # THEN each later run of that local day asks again, and the next day's runs do not
    assert _run(storage, datetime(2026, 11, 29, 9, 20, tzinfo=UTC)) == [("app", day)]
    assert _run(storage, datetime(2026, 11, 29, 23, 20, tzinfo=UTC)) == [("app", day)]
    assert _run(storage, datetime(2026, 11, 30, 0, 20, tzinfo=UTC)) == []
    # AND a day without events is not asked for again
    write_status(storage, "app", day, {"status": "no_events", "reason": "no events were received"})
    assert _run(storage, datetime(2026, 11, 29, 10, 20, tzinfo=UTC)) == []


def test_explicit_triggers_ask_whatever_the_hour(tmp_path) -> None:
    storage = LocalStorage(tmp_path / "lake")
    add_app(storage, "app", timezone="Asia/Tokyo")
    noon = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # 21:00 in Tokyo
    assert _run(storage, noon) == []
    requests = report_requests(storage, {"app_id": "app"}, now=noon)
    assert [(request.app.app_id, request.day) for request in requests] == [("app", date(2026, 11, 28))]
    requests = report_requests(storage, {"app_id": "app", "date": "2026-11-01"}, now=noon)
    assert [request.day for request in requests] == [date(2026, 11, 1)]


@pytest.mark.parametrize(("report_hour", "metrics_hour"), [(8, 6), (2, 0), (1, 0), (0, 0), (23, 21)])
def test_the_metrics_of_an_app_come_two_hours_before_its_report(report_hour: int, metrics_hour: int) -> None:
    assert AppConfig("app", report_hour=report_hour).metrics_hour == metrics_hour


def _run_periods(storage: LocalStorage, run_at: datetime) -> list[tuple[str, str, str]]:
    event = {**SCHEDULED, "time": run_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return [
        (request.app.app_id, request.period.kind, request.period.label)
        for request in report_requests(storage, event, now=run_at)
    ]


def test_weekly_and_monthly_reports_go_out_once_on_mondays_and_the_first_at_the_local_report_hour(
    tmp_path,
) -> None:
    # GIVEN four apps that ask for all three reports, one of them across the fall-back of Nov 1,
    # and one that asks for the daily report only
    storage = LocalStorage(tmp_path / "lake")
    zones = {
        "utc": "UTC",
        "la": "America/Los_Angeles",
        "kolkata": "Asia/Kolkata",
        "kathmandu": "Asia/Kathmandu",
    }
    for app_id, timezone in zones.items():
        add_app(storage, app_id, timezone=timezone, reports=["daily", "weekly", "monthly"])
    add_app(storage, "daily-only", timezone="UTC")
    # WHEN the schedule fires every hour from Oct 30 to Nov 4 (UTC): Nov 1 is a Sunday, Nov 2 a Monday
    start = datetime(2026, 10, 30, 0, 20, tzinfo=UTC)
    sent: dict[tuple[str, str, str], list[datetime]] = {}
    for hour in range(24 * 5):
        run_at = start + timedelta(hours=hour)
        for asked in _run_periods(storage, run_at):
            sent.setdefault(asked, []).append(run_at)
    # THEN each app got each report once: October's on its local Nov 1, week 44 (Oct 26 - Nov 1)
    # on its local Monday Nov 2, both in the run of its local 08:00
    for app_id, timezone in zones.items():
        zone = ZoneInfo(timezone)
        for kind, label, local_day in (
            ("monthly", "2026-10", date(2026, 11, 1)),
            ("weekly", "2026-W44", date(2026, 11, 2)),
        ):
            runs = sent.get((app_id, kind, label))
            assert runs is not None and len(runs) == 1, (app_id, kind, runs)
            local = runs[0].astimezone(zone)
            assert (local.date(), local.hour) == (local_day, 8), (app_id, kind, local)
        assert not [
            key
            for key in sent
            if key[0] == app_id and key[1] != "daily" and key[2] not in ("2026-10", "2026-W44")
        ]
    # AND the app that asks for daily reports only got no other
    assert {kind for app_id, kind, _label in sent if app_id == "daily-only"} == {"daily"}
    # AND every daily report went out once as before
    assert all(len(runs) == 1 for runs in sent.values())


def test_a_weekly_report_waiting_for_its_week_document_is_asked_for_again_that_monday(tmp_path) -> None:
    storage = LocalStorage(tmp_path / "lake")
    add_app(storage, "app", reports=["weekly"])
    monday = datetime(2026, 11, 30, 8, 20, tzinfo=UTC)
    assert _run_periods(storage, monday) == [("app", "weekly", "2026-W48")]
    # GIVEN its run found the week's document missing
    week = ReportPeriod.parse_week("2026-W48")
    write_status(storage, "app", week, {"status": "incomplete", "reason": "no metrics document at ..."})
    # THEN later runs that Monday ask again; Tuesday's do not
    assert _run_periods(storage, monday + timedelta(hours=3)) == [("app", "weekly", "2026-W48")]
    assert _run_periods(storage, monday + timedelta(hours=16)) == []


def test_explicit_weekly_and_monthly_triggers(tmp_path) -> None:
    storage = LocalStorage(tmp_path / "lake")
    add_app(storage, "app")
    noon = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    [week] = report_requests(storage, {"app_id": "app", "week": "2026-W48"}, now=noon)
    assert (week.period.kind, week.period.first, week.period.last) == (
        "weekly",
        date(2026, 11, 23),
        date(2026, 11, 29),
    )
    [month] = report_requests(storage, {"detail": {"app_id": "app", "month": "2026-11"}}, now=noon)
    assert (month.period.first, month.period.last) == (date(2026, 11, 1), date(2026, 11, 30))
    with pytest.raises(ValueError, match="names date and week"):
        report_requests(storage, {"date": "2026-11-28", "week": "2026-W48"}, now=noon)
    with pytest.raises(ValueError, match="'2026-W54' is not an ISO week"):
        report_requests(storage, {"week": "2026-W54"}, now=noon)
