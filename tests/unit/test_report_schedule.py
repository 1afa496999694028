"""Which reports an hourly run asks for: each day once, in the hour its report hour begins, local time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from minidrama.config import AppConfig, add_app
from minidrama.lake import LocalStorage
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
