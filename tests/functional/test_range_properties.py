"""Properties of range documents on random event sets, and the week and month documents."""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minidrama.config import AppConfig
from minidrama.lake import LocalStorage, metrics_key, month_metrics_key, week_metrics_key
from minidrama.metrics import compute_days, refresh_recent
from tests.functional.test_metrics_properties import DAYS, random_events
from tests.metrics_support import RANGE_VALIDATOR, event, ingest, query, without_generated_at

APP = AppConfig("app")
RANGE_FORMS = ("retention", "ltv")


def _without_range_forms(segments: dict) -> dict:
    return {
        name: {
            module: (
                {key: value for key, value in metrics.items() if key != "ltv"}
                if module == "iap_users"
                else metrics
            )
            for module, metrics in segment.items()
            if module != "retention"
        }
        for name, segment in segments.items()
    }


def _fresh_lake() -> tuple[LocalStorage, Path]:
    root = Path(tempfile.mkdtemp(prefix="range-properties-"))
    return LocalStorage(root), root


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=random_events(), first=st.sampled_from(DAYS), length=st.integers(min_value=1, max_value=5))
def test_a_range_agrees_with_its_days(events, first, length):
    lake, root = _fresh_lake()
    try:
        # GIVEN random events over five days, every day computed
        ingest(lake, events, APP)
        compute_days(lake, APP, DAYS)
        last = min(first + timedelta(days=length - 1), DAYS[-1])
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        daily = {day: json.loads(lake.get_bytes(metrics_key("app", day))) for day in days}

        # WHEN the range is queried
        document = query(lake, first, last, APP)

        segments = document["segments"]
        # THEN a one-day range is that day's document but for retention and LTV
        if first == last:
            assert _without_range_forms(segments) == _without_range_forms(daily[first]["segments"])
        # AND new users of the range are the sum of the days' new users
        new_by_day = [daily[day]["segments"]["all"]["dashboard"]["new_users"] for day in days]
        assert segments["all"]["dashboard"]["new_users"] == sum(new_by_day)
        # AND segments are those of its days, and per segment: active users are at most the sum of
        # the days' active users, recharge orders and GMV are the sums of the days'
        assert set(segments) == {name for day in days for name in daily[day]["segments"]}
        for name, segment in segments.items():
            present = [daily[day]["segments"][name] for day in days if name in daily[day]["segments"]]
            assert segment["dashboard"]["active_users"] <= sum(
                d["dashboard"]["active_users"] for d in present
            )
            for group in ("all", "new_payers", "returning_payers") if first == last else ("all",):
                orders = segment["iap_orders"][group]
                assert orders["recharge_orders"] == sum(
                    d["iap_orders"][group]["recharge_orders"] for d in present
                )
                assert orders["redeem_orders"] == sum(
                    d["iap_orders"][group]["redeem_orders"] for d in present
                )
                assert orders["gmv"] == round(sum(d["iap_orders"][group]["gmv"] for d in present), 2)
            # AND total users are those of the last day
            last_day = daily[last]["segments"].get(name)
            if last_day:
                assert segment["dashboard"]["total_users"] == last_day["dashboard"]["total_users"]
    finally:
        shutil.rmtree(root, ignore_errors=True)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=random_events(), late_day=st.sampled_from(DAYS))
def test_recomputing_a_day_after_late_events_changes_every_range_and_period_that_contains_it(
    events, late_day
):
    # GIVEN random events of five days (Sunday 2026-11-01 .. Thursday 11-05), every day computed,
    # and the week 2026-W44 (10-26 .. 11-01) complete once 10-26 .. 10-31 are computed too
    lake, root = _fresh_lake()
    now = datetime(2026, 12, 2, tzinfo=UTC)
    week_days = [date(2026, 10, 26) + timedelta(days=n) for n in range(6)]
    try:
        ingest(lake, events, APP)
        compute_days(lake, APP, [*week_days, *DAYS], now)
        # ranges that contain the late day, and ranges on either side of it
        spans = [(DAYS[0], DAYS[-1]), (late_day, late_day), (DAYS[0], late_day), (late_day, DAYS[-1])]
        spans += [(day, day) for day in DAYS if day != late_day][:2]
        before = {span: without_generated_at(query(lake, *span, APP)) for span in spans}
        week_key = week_metrics_key("app", "2026-W44")
        week_before = json.loads(lake.get_bytes(week_key))

        # WHEN a late launch and a recharge of a new user arrive for one day, and it is recomputed
        stamp = f"{late_day.isoformat()}T12:00:00Z"
        ingest(
            lake,
            [
                event("late-launch", "app_launch", stamp, "late-user", entry_point="feed"),
                event(
                    "late-order",
                    "recharge_order",
                    stamp,
                    "late-user",
                    order_id="late",
                    amount=2.5,
                    currency="USD",
                ),
            ],
            APP,
        )
        written = compute_days(lake, APP, [late_day], now)

        # THEN every range that contains the day changed (one more active user, 2.50 more GMV),
        # and no other range did
        for span, old in before.items():
            new = without_generated_at(query(lake, *span, APP))
            if span[0] <= late_day <= span[1]:
                old_all, new_all = old["segments"]["all"], new["segments"]["all"]
                assert new_all["dashboard"]["active_users"] == old_all["dashboard"]["active_users"] + 1
                assert new_all["iap_orders"]["all"]["gmv"] == round(
                    old_all["iap_orders"]["all"]["gmv"] + 2.5, 2
                )
            else:
                assert new == old
        # AND the week and month documents containing the day were rewritten with it
        if late_day == date(2026, 11, 1):
            assert week_key in written
            week = json.loads(lake.get_bytes(week_key))
            RANGE_VALIDATOR.validate(week)
            assert (
                week["segments"]["all"]["dashboard"]["active_users"]
                == week_before["segments"]["all"]["dashboard"]["active_users"] + 1
            )
        else:
            assert week_key not in written
        assert month_metrics_key("app", "2026-11") not in written  # November is not fully computed
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _launch_every_day(lake: LocalStorage, app: AppConfig, days: list[date]) -> None:
    ingest(
        lake,
        [
            event(
                f"l-{day}",
                "app_launch",
                f"{day.isoformat()}T12:00:00Z",
                f"u-{day.day % 3}",
                entry_point="feed",
            )
            for day in days
        ],
        app,
    )


def test_the_scheduled_job_writes_a_week_when_it_completes_and_a_month_on_its_first_day(lake):
    # GIVEN an app in Asia/Kolkata with launches from Wednesday 2026-11-18 (its first events)
    app = AppConfig("app", timezone="Asia/Kolkata")
    data_days = [date(2026, 11, 18) + timedelta(days=n) for n in range(13)]  # .. 11-30
    _launch_every_day(lake, app, data_days)

    # WHEN the job runs on Sunday 11-22 (local), the week 11-16 .. 11-22 is not complete yet
    result = refresh_recent(lake, app, datetime(2026, 11, 22, 3, 0, tzinfo=UTC), 3)
    assert not [key for key in result.documents if "week=" in key]

    # WHEN it runs on Monday 11-23 local (22:00 UTC on the 22nd is 03:30 on the 23rd in Kolkata)
    result = refresh_recent(lake, app, datetime(2026, 11, 22, 22, 0, tzinfo=UTC), 3)

    # THEN the week's document is written, its Monday and Tuesday (before any event) computed with it
    week_key = week_metrics_key("app", "2026-W47")
    assert week_key in result.documents
    assert metrics_key("app", "2026-11-16") in result.documents
    week = json.loads(lake.get_bytes(week_key))
    RANGE_VALIDATOR.validate(week)
    assert (week["from"], week["to"], week["timezone"]) == ("2026-11-16", "2026-11-22", "Asia/Kolkata")
    assert week["segments"]["all"]["behavior"]["visit_count"] == 5  # launches of 11-18 .. 11-22

    # WHEN it runs on December 1st local, THEN November and the week 11-23 .. 11-29 are written
    result = refresh_recent(lake, app, datetime(2026, 11, 30, 20, 0, tzinfo=UTC), 3)
    month_key = month_metrics_key("app", "2026-11")
    assert month_key in result.documents
    assert week_metrics_key("app", "2026-W48") in result.documents
    month = json.loads(lake.get_bytes(month_key))
    RANGE_VALIDATOR.validate(month)
    assert (month["from"], month["to"]) == ("2026-11-01", "2026-11-30")
    assert month["segments"]["all"]["behavior"]["visit_count"] == 13
    assert month["segments"]["all"]["dashboard"]["active_users"] == 3


def test_compute_writes_only_complete_and_fully_computed_periods(lake):
    # GIVEN launches on every day of November 2026
    november = [date(2026, 11, 1) + timedelta(days=n) for n in range(30)]
    _launch_every_day(lake, APP, november)

    # WHEN only two weeks are computed, THEN their week documents are written, not the month's
    two_weeks = [date(2026, 11, 9) + timedelta(days=n) for n in range(14)]
    written = compute_days(lake, APP, two_weeks, datetime(2026, 12, 5, tzinfo=UTC))
    assert [key for key in written if "metrics.json" in key and "/dt=" not in key] == [
        week_metrics_key("app", "2026-W46"),
        week_metrics_key("app", "2026-W47"),
    ]

    # WHEN the rest of the month is computed, THEN the month's document is written too
    written = compute_days(lake, APP, november, datetime(2026, 12, 5, tzinfo=UTC))
    assert month_metrics_key("app", "2026-11") in written
    # AND a month that has not ended yet has none
    written = compute_days(lake, APP, november, datetime(2026, 11, 30, 12, tzinfo=UTC))
    assert month_metrics_key("app", "2026-11") not in written
