"""The demo traffic simulator: deterministic, valid where meant to be, shaped like a real app."""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from minidrama.config import Rates
from minidrama.demo import demo_days, received_at_of
from minidrama.simulator import (
    ENTRY_POINTS,
    PRICE_POINTS,
    is_intentionally_bad,
    return_probability,
    simulate,
)
from minidrama.validation import validate_events

TIMEZONE = "America/Los_Angeles"
ZONE = ZoneInfo(TIMEZONE)
START = date(2026, 10, 24)  # the 35 days cover the end of daylight saving time (2026-11-01)
DAYS = 35
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
OFFSET = re.compile(r"(Z|[+-]\d\d:\d\d)$")


@pytest.fixture(scope="module")
def traffic() -> list[tuple[date, list[dict[str, Any]]]]:
    """Five weeks of the default demo scale (about 270,000 events)."""
    return list(simulate(START, DAYS, seed=7, timezone=TIMEZONE))


@pytest.fixture(scope="module")
def good_events(traffic: list[tuple[date, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    return [event for _day, events in traffic for event in events if not is_intentionally_bad(event)]


def _local_day(event: dict[str, Any]) -> date:
    return datetime.fromisoformat(event["event_time"]).astimezone(ZONE).date()


@pytest.fixture(scope="module")
def launch_days(good_events: list[dict[str, Any]]) -> dict[str, set[date]]:
    """user -> the app-local days with a successful launch."""
    days: dict[str, set[date]] = defaultdict(set)
    for event in good_events:
        if event["event_name"] == "app_launch" and event["properties"]["success"]:
            days[event["user_id"]].add(_local_day(event))
    return days


# --- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_the_same_events() -> None:
    # GIVEN two simulations with the same arguments WHEN both run
    first = list(simulate(START, 4, seed=11, timezone=TIMEZONE, new_users_per_day=40))
    second = list(simulate(START, 4, seed=11, timezone=TIMEZONE, new_users_per_day=40))
    # THEN they yield exactly the same days and events
    assert first == second
    assert [day for day, _events in first] == [START + timedelta(days=n) for n in range(4)]


def test_another_seed_gives_other_events() -> None:
    first = list(simulate(START, 2, seed=11, new_users_per_day=40))
    other = list(simulate(START, 2, seed=12, new_users_per_day=40))
    first_ids = {event["event_id"] for _day, events in first for event in events}
    other_ids = {event["event_id"] for _day, events in other for event in events}
    assert first_ids.isdisjoint(other_ids)


@pytest.mark.parametrize(
    ("days", "new_users_per_day", "message"),
    [(0, 10, "days must be at least 1"), (3, 0, "new_users_per_day must be at least 1")],
)
def test_nonsense_scale_is_refused(days: int, new_users_per_day: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        next(simulate(START, days, seed=1, new_users_per_day=new_users_per_day))


# --- the retention curve (pure) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_since_install", "expected"),
    [(0, 1.0), (1, 0.41), (7, 0.155), (14, 0.095), (30, 0.052), (120, 0.02), (400, 0.02)],
)
def test_return_probability_anchors(days_since_install: int, expected: float) -> None:
    assert return_probability(days_since_install) == pytest.approx(expected)


def test_return_probability_decays() -> None:
    curve = [return_probability(k) for k in range(1, 150)]
    assert all(later <= earlier for earlier, later in zip(curve, curve[1:], strict=False))


# --- validity ---------------------------------------------------------------------------------


def test_good_events_are_accepted_and_bad_ones_rejected(
    traffic: list[tuple[date, list[dict[str, Any]]]],
) -> None:
    # GIVEN each day's delivered events, received at the end of that day in the app's timezone
    rejected_reasons: Counter[str] = Counter()
    total = bad = 0
    for day, events in traffic:
        received_at = datetime.combine(day + timedelta(days=1), time(), tzinfo=ZONE)
        # WHEN the contract's validation reads them
        result = validate_events(events, received_at=received_at, currency="USD", rates=Rates())
        # THEN exactly the intentionally broken ones are rejected
        assert [r.index for r in result.rejected] == [
            index for index, event in enumerate(events) if is_intentionally_bad(event)
        ]
        assert len(result.accepted) == len(events) - len(result.rejected)
        total += len(events)
        bad += len(result.rejected)
        for rejection in result.rejected:
            rejected_reasons.update(error.split(":")[0] for error in rejection.errors)
    # AND they are about 0.5 % of the traffic, with every kind of mistake represented
    assert 0.003 < bad / total < 0.008
    assert {"user_id", "region", "duration_ms", "currency"} <= set(rejected_reasons)


def test_events_have_the_contract_shape(good_events: list[dict[str, Any]]) -> None:
    for event in good_events[:20_000]:
        assert set(event) == {
            "event_id",
            "event_name",
            "event_time",
            "user_id",
            "session_id",
            "os",
            "region",
            "properties",
        }
        assert UUID.match(event["event_id"])
        assert OFFSET.search(event["event_time"])
    offsets = Counter(OFFSET.search(event["event_time"]).group(1) for event in good_events)  # type: ignore[union-attr]
    # Clocks send UTC ("Z") or the device's local offset, half and half.
    assert 0.4 < offsets["Z"] / len(good_events) < 0.6
    assert {"+08:00", "+07:00", "-03:00"} <= set(offsets)


def test_user_attributes_are_sticky(good_events: list[dict[str, Any]]) -> None:
    seen: dict[str, tuple[Any, ...]] = {}
    for event in good_events:
        if event["event_name"] != "app_launch":
            continue
        properties = event["properties"]
        attributes = (
            event["os"],
            event["region"],
            properties["device_brand"],
            properties["device_model"],
            properties["tiktok_version"],
            properties.get("gender"),
            properties.get("age_group"),
        )
        assert seen.setdefault(event["user_id"], attributes) == attributes
        assert properties["entry_point"] in ENTRY_POINTS


def test_orders_carry_what_the_contract_requires(good_events: list[dict[str, Any]]) -> None:
    prices = {float(price) for price, *_rest in PRICE_POINTS}
    recharges = [e["properties"] for e in good_events if e["event_name"] == "recharge_order"]
    redeems = [e["properties"] for e in good_events if e["event_name"] == "redeem_order"]
    assert recharges and redeems
    for order in recharges:
        assert order["amount"] in prices
        assert order["currency"] == "USD"
        assert order["beans"] > 0
        assert order["product_id"].startswith("beans_")
    for order in redeems:
        assert re.match(r"^drama_\d+_ep_\d+$", order["product_id"])
        assert order["beans"] > 0


# --- shape ------------------------------------------------------------------------------------


def test_daily_active_users_grow_to_a_demo_scale(
    traffic: list[tuple[date, list[dict[str, Any]]]], launch_days: dict[str, set[date]]
) -> None:
    active = Counter(day for days in launch_days.values() for day in days)
    last_week = [active[day] for day, _events in traffic[-7:]]
    first_week = [active[day] for day, _events in traffic[:7]]
    assert min(last_week) >= 1_000
    assert max(last_week) <= 3_000
    assert statistics.mean(last_week) > statistics.mean(first_week)


def test_more_newcomers_at_the_weekend(launch_days: dict[str, set[date]]) -> None:
    new_by_weekday: dict[bool, list[int]] = defaultdict(list)
    first_launches = Counter(min(days) for days in launch_days.values())
    for day, count in first_launches.items():
        new_by_weekday[day.weekday() >= 5].append(count)
    assert statistics.mean(new_by_weekday[True]) > 1.1 * statistics.mean(new_by_weekday[False])


@pytest.mark.parametrize(("day_n", "low", "high"), [(1, 0.35, 0.45), (7, 0.12, 0.18), (30, 0.03, 0.08)])
def test_retention_of_new_users(
    launch_days: dict[str, set[date]], day_n: int, low: float, high: float
) -> None:
    # GIVEN every cohort of new users that has a day N in the simulation
    cohorts: dict[date, list[str]] = defaultdict(list)
    for user, days in launch_days.items():
        cohorts[min(days)].append(user)
    retained = size = 0
    for cohort_date, users in cohorts.items():
        if cohort_date + timedelta(days=day_n) < START + timedelta(days=DAYS):
            size += len(users)
            retained += sum(1 for user in users if cohort_date + timedelta(days=day_n) in launch_days[user])
    # THEN the share launching again on day N is in the intended range
    assert low <= retained / size <= high


def test_paying_users_share(good_events: list[dict[str, Any]], launch_days: dict[str, set[date]]) -> None:
    payers: dict[date, Counter[str]] = defaultdict(Counter)
    for event in good_events:
        if event["event_name"] == "recharge_order":
            payers[_local_day(event)][event["user_id"]] += 1
    active = Counter(day for days in launch_days.values() for day in days)
    shares = [len(payers[day]) / count for day, count in active.items()]
    assert 0.03 <= statistics.mean(shares) <= 0.05
    repeat_payers = sum(1 for users in payers.values() for orders in users.values() if orders >= 2)
    assert repeat_payers >= DAYS  # about one a day or more


def test_launches(good_events: list[dict[str, Any]]) -> None:
    launches = [e["properties"] for e in good_events if e["event_name"] == "app_launch"]
    failed = [launch for launch in launches if not launch["success"]]
    assert 0.02 <= len(failed) / len(launches) <= 0.03
    assert all("launch_ms" not in launch for launch in failed)
    launch_ms = sorted(launch["launch_ms"] for launch in launches if "launch_ms" in launch)
    assert launch_ms[len(launch_ms) // 10] >= 800
    assert launch_ms[-len(launch_ms) // 10] <= 2500
    ios = sum(1 for e in good_events if e["event_name"] == "app_launch" and e["os"] == "iOS")
    assert 0.4 <= ios / len(launches) <= 0.52


def test_failed_launches_open_no_session(good_events: list[dict[str, Any]]) -> None:
    failed_sessions = {
        e["session_id"]
        for e in good_events
        if e["event_name"] == "app_launch" and not e["properties"]["success"]
    }
    events_of: dict[str, set[str]] = defaultdict(set)
    for event in good_events:
        if event["session_id"] in failed_sessions:
            events_of[event["session_id"]].add(event["event_id"])
    # The launch event is the only one of its session (re-sent copies share its event_id).
    assert failed_sessions and all(len(ids) == 1 for ids in events_of.values())


def test_session_durations_are_minutes(good_events: list[dict[str, Any]]) -> None:
    durations = [e["properties"]["duration_ms"] for e in good_events if e["event_name"] == "session_end"]
    assert 3 * 60_000 <= statistics.median(durations) <= 12 * 60_000


# --- noise an ingestion service must handle ---------------------------------------------------


def test_resent_events_and_orders(good_events: list[dict[str, Any]]) -> None:
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in good_events:
        by_id[event["event_id"]].append(event)
    resent = [copies for copies in by_id.values() if len(copies) > 1]
    # A re-sent event is the same event again, byte for byte.
    assert len(resent) > 100
    assert all(copy == copies[0] for copies in resent for copy in copies)
    order_events: dict[str, set[str]] = defaultdict(set)
    for event in good_events:
        if event["event_name"] in {"recharge_order", "redeem_order"}:
            order_events[event["properties"]["order_id"]].add(event["event_id"])
    # A re-sent order is a new event (new event_id) for the same order_id.
    assert sum(1 for ids in order_events.values() if len(ids) > 1) >= 10


def test_late_events_arrive_the_next_day(traffic: list[tuple[date, list[dict[str, Any]]]]) -> None:
    late = [
        event
        for day, events in traffic
        for event in events
        if not is_intentionally_bad(event) and _local_day(event) < day
    ]
    assert len(late) > 100
    assert all(_local_day(event) >= START for event in late)


def test_custom_events_are_present(good_events: list[dict[str, Any]]) -> None:
    names = Counter(event["event_name"] for event in good_events)
    assert names["share_click"] > 0  # not a known name: stored, ignored by the metrics


# --- the demo's calendar (pure helpers of minidrama.demo) -------------------------------------


@pytest.mark.parametrize(
    ("now", "days", "expected_first", "expected_last"),
    [
        # 04:00 UTC on the 29th is still the 28th in Los Angeles: yesterday there is the 27th.
        (datetime(2026, 11, 29, 4, 0, tzinfo=UTC), 35, date(2026, 10, 24), date(2026, 11, 27)),
        (datetime(2026, 11, 29, 9, 0, tzinfo=UTC), 35, date(2026, 10, 25), date(2026, 11, 28)),
        (datetime(2026, 11, 29, 9, 0, tzinfo=UTC), 1, date(2026, 11, 28), date(2026, 11, 28)),
    ],
)
def test_demo_days_end_yesterday_in_the_app_timezone(
    now: datetime, days: int, expected_first: date, expected_last: date
) -> None:
    result = demo_days(now, TIMEZONE, days)
    assert (result[0], result[-1], len(result)) == (expected_first, expected_last, days)


def test_a_batch_is_received_just_after_its_newest_event() -> None:
    now = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
    batch = [
        {"event_time": "2026-11-27T10:00:00.000Z"},
        {"event_time": "2026-11-27T20:30:00.000+08:00"},  # 12:30 UTC, the newest
        {"event_time": 42},  # a broken event does not decide anything
    ]
    assert received_at_of(batch, now) == datetime(2026, 11, 27, 12, 30, 2, tzinfo=UTC)
    assert received_at_of([{"event_time": "2026-11-30T00:00:00Z"}], now) == now
