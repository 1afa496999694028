"""The engine's documents equal the independent reference (tests/oracle.py), value by value.

Random but realistic event sets over ~35 days (so that d30 retention and LTV cohorts have
members) go through ingestion into a fresh local lake; a few days are computed by the engine and
each stored document is compared with ``reference_document`` over the same events.
``MINIDRAMA_ORACLE_EXAMPLES`` raises the number of examples when hunting for disagreements.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minidrama.config import AppConfig
from minidrama.lake import LocalStorage, metrics_key
from minidrama.metrics import compute_days
from tests.metrics_support import ingest, without_generated_at
from tests.oracle import FUNNEL_PAGE_VIEWS, reference_document

FIRST_DAY = date(2026, 10, 5)
LAST_DAY = date(2026, 11, 8)  # 35 days; America/New_York leaves DST on 2026-11-01
ALL_DAYS = [FIRST_DAY + timedelta(days=n) for n in range((LAST_DAY - FIRST_DAY).days + 1)]
COMPUTED_DAY_CHOICES = [date(2026, 10, 20), date(2026, 11, 1), date(2026, 11, 2), *ALL_DAYS[-5:]]
TIMEZONES = ["UTC", "Asia/Kolkata", "America/New_York", "Asia/Kathmandu"]
OS_NAMES = ["ios", "android", "harmonyos"]
OS_SPELLINGS = {
    "ios": ["ios", "iOS", "IOS"],
    "android": ["android", "Android"],
    "harmonyos": ["harmonyos", "HarmonyOS"],
}
REGIONS = ["US", "GB", "PH", "IN", "BR"]
ENTRY_POINTS = ["feed", "search", "push", "profile_link", "Feed"]  # as sent: "Feed" is its own
AMOUNTS = [Decimal(text) for text in ("0.99", "4.99", "9.99", "19.99", "0.125", "1.005", "2.5", "0.015", "3")]
PRODUCTS = [f"ep-{n}" for n in range(1, 14)]
CUSTOM_NAMES = ["episode_like", "share_click"]
SEND_OFFSETS = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
MONEY_KEYS = frozenset(("gmv", "average_gmv", "arppu", "revenue", "value"))


class _Ids:
    def __init__(self) -> None:
        self.count = 0

    def next(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"


def _sent_time(draw: st.DrawFn, instant: datetime) -> str:
    """``instant`` as an SDK might write it: UTC with ``Z`` or a local offset, with or without ms."""
    sent = instant.astimezone(draw(st.sampled_from(SEND_OFFSETS)))
    text = sent.isoformat(timespec=draw(st.sampled_from(["milliseconds", "seconds"])))
    return text.replace("+00:00", "Z")


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[dict[str, Any]], str, str, list[date], bool]:
    zone_name = draw(st.sampled_from(TIMEZONES))
    zone = ZoneInfo(zone_name)
    currency = draw(st.sampled_from(["USD", "USD", "EUR"]))
    days = sorted(draw(st.lists(st.sampled_from(COMPUTED_DAY_CHOICES), min_size=1, max_size=3, unique=True)))
    # Activity concentrates on the computed days and their cohort days, so cohorts get members.
    focus = sorted({d - timedelta(days=n) for d in days for n in (0, 1, 7, 14, 30)} & set(ALL_DAYS))
    oses = draw(st.lists(st.sampled_from(OS_NAMES), min_size=2, max_size=3, unique=True))
    regions = draw(st.lists(st.sampled_from(REGIONS), min_size=2, max_size=4, unique=True))
    ids = _Ids()
    events: list[dict[str, Any]] = []

    def emit(
        name: str, instant: datetime, user: str, where: tuple[str, str], session: str | None, **props: Any
    ) -> dict[str, Any]:
        os_name, region = where
        body: dict[str, Any] = {
            "event_id": ids.next("e"),
            "event_name": name,
            "event_time": _sent_time(draw, instant),
            "user_id": user,
            "os": draw(st.sampled_from(OS_SPELLINGS[os_name])),
            "region": region if draw(st.integers(0, 5)) else region.lower(),
        }
        if session is not None:
            body["session_id"] = session
        empty_properties_sent = draw(st.booleans())
        if props or empty_properties_sent:
            body["properties"] = props
        events.append(body)
        return body

    for user_number in range(draw(st.integers(min_value=2, max_value=8))):
        user = f"u{user_number}"
        home = (draw(st.sampled_from(oses)), draw(st.sampled_from(regions)))
        first_day = draw(st.sampled_from(focus) | st.sampled_from(ALL_DAYS))
        later_days = [day for day in ALL_DAYS if day > first_day]
        later_focus = [day for day in focus if day > first_day]
        active_days = {first_day}
        if later_days:
            active_days |= set(
                draw(
                    st.lists(
                        st.sampled_from(later_focus or later_days) | st.sampled_from(later_days), max_size=6
                    )
                )
            )
        attributes = {
            key: draw(st.sampled_from(values))
            for key, values in (
                ("gender", ["female", "male"]),
                ("age_group", ["18-24", "25-34", "35-44"]),
                ("device_brand", ["Apple", "Samsung", "Xiaomi"]),
                ("device_model", ["iPhone15,2", "SM-S918B", "23049PCD8G"]),
                ("tiktok_version", ["34.1.2", "35.0.0"]),
            )
            if draw(st.integers(0, 3))
        }
        for day in sorted(active_days):
            for _ in range(draw(st.integers(min_value=1, max_value=2))):
                where = (
                    home
                    if draw(st.integers(0, 6))
                    else (draw(st.sampled_from(oses)), draw(st.sampled_from(regions)))
                )
                start = _session_start(draw, day, zone)
                session = ids.next(f"s-{user}-")
                _session(draw, emit, user, where, session, start, attributes, currency)
    _resend(draw, events)
    if draw(st.integers(0, 3)) == 0:
        events = draw(st.permutations(events))  # batches arrive out of time order
    return events, zone_name, currency, days, draw(st.booleans())


def _session_start(draw: st.DrawFn, day: date, zone: ZoneInfo) -> datetime:
    """A start time on ``day`` in the app's zone, now and then right at a midnight."""
    midnight = datetime.combine(day, time(0), zone).astimezone(UTC)
    edge = draw(st.integers(0, 9))
    if edge == 0:
        return midnight
    if edge == 1:
        return datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC) - timedelta(
            milliseconds=1
        )
    minute = draw(st.integers(min_value=0, max_value=24 * 60 - 1))
    # fold=1: the second 01:xx of a day that leaves DST
    local = datetime.combine(day, time(minute // 60, minute % 60, fold=draw(st.integers(0, 1))), zone)
    return local.astimezone(UTC)


def _session(
    draw: st.DrawFn,
    emit: Callable[..., dict[str, Any]],
    user: str,
    where: tuple[str, str],
    session: str,
    start: datetime,
    attributes: dict[str, str],
    currency: str,
) -> None:
    """One visit: launch attempts, page views, orders, a custom event and maybe a session end."""
    kind = draw(st.sampled_from(["ok", "ok", "ok", "retry", "failed", "orphan_end"]))
    clock = start
    if kind in ("retry", "failed"):
        failed = {"entry_point": draw(st.sampled_from(ENTRY_POINTS)), "success": False}
        if draw(st.booleans()):
            failed["launch_ms"] = draw(st.integers(min_value=0, max_value=20_000))
        emit(
            "app_launch",
            clock,
            user,
            where,
            session if draw(st.booleans()) else f"{session}-failed",
            **failed,
        )
        clock += timedelta(seconds=draw(st.integers(min_value=1, max_value=90)))
        if kind == "failed":
            return
    if kind != "orphan_end":
        launch: dict[str, Any] = {"entry_point": draw(st.sampled_from(ENTRY_POINTS))}
        if draw(st.integers(0, 3)) == 0:
            launch["success"] = True
        if draw(st.integers(0, 3)):
            launch["launch_ms"] = draw(st.sampled_from([0, 350]) | st.integers(min_value=0, max_value=8000))
        launch.update({key: value for key, value in attributes.items() if draw(st.integers(0, 4))})
        if draw(st.integers(0, 5)) == 0:
            launch["ab_bucket"] = "b"  # an unknown property is kept and ignored
        emit("app_launch", clock, user, where, session, **launch)
        if draw(st.integers(0, 9)) == 0:
            # fired twice at the same instant with other attributes: the larger event_id is "latest"
            twin = {**launch, "entry_point": draw(st.sampled_from(ENTRY_POINTS))}
            twin.update({key: "other" for key in attributes if draw(st.booleans())})
            emit("app_launch", clock, user, where, session, **twin)
    for stage in draw(st.lists(st.sampled_from(FUNNEL_PAGE_VIEWS), max_size=6)):
        clock += timedelta(seconds=draw(st.integers(min_value=1, max_value=300)))
        emit(stage, clock, user, where, session if draw(st.booleans()) else None)
    for name in ("recharge_order", "redeem_order"):
        most = 12 if name == "redeem_order" and draw(st.integers(0, 2)) == 0 else 2  # a binge unlocks many
        for _ in range(draw(st.integers(min_value=0, max_value=most)) if draw(st.integers(0, 2)) == 0 else 0):
            clock += timedelta(seconds=draw(st.integers(min_value=1, max_value=600)))
            order_id = f"{'o' if name == 'recharge_order' else 'r'}-{user}-{clock.timestamp():.0f}"
            if name == "recharge_order":
                amount: Any = draw(st.sampled_from(AMOUNTS))
                if draw(st.booleans()):
                    amount = float(amount)  # as json.loads gives it
                props: dict[str, Any] = {"order_id": order_id, "amount": amount}
                props["currency"] = currency  # the reporting currency: no conversion
                if draw(st.booleans()):
                    props["beans"] = int(Decimal(str(amount)) * 100)
            else:
                props = {"order_id": order_id, "product_id": draw(st.sampled_from(PRODUCTS)), "beans": 60}
            emit(name, clock, user, where, None, **props)
            if draw(st.integers(0, 3)) == 0:
                # the order re-sent as a new event, later, sometimes on a later day
                later = clock + timedelta(
                    minutes=draw(st.sampled_from([1, 30, 600, 1500, 2 * 1440 + 7, 12 * 1440]))
                )
                # (from a server that sees the user elsewhere, now and then)
                copy_where = where if draw(st.integers(0, 5)) else (where[0], draw(st.sampled_from(REGIONS)))
                emit(name, later, user, copy_where, None, **dict(props))
    if draw(st.integers(0, 4)) == 0:
        emit(draw(st.sampled_from(CUSTOM_NAMES)), clock, user, where, session, episode=3)
    if draw(st.integers(0, 4)):
        duration_ms = draw(st.sampled_from([0, 1, 999, 45_000, 600_000, 5_400_000]))
        ended = clock + timedelta(milliseconds=duration_ms)
        end_where = (
            where if draw(st.integers(0, 7)) else (where[0], draw(st.sampled_from(REGIONS)))
        )  # travelled
        emit("session_end", ended, user, end_where, session, duration_ms=duration_ms)
        if draw(st.integers(0, 7)) == 0:
            # the app reported the session's end twice (backgrounded, resumed, closed)
            more_ms = draw(st.integers(min_value=0, max_value=120_000))
            emit(
                "session_end",
                ended + timedelta(milliseconds=more_ms + 1),
                user,
                where,
                session,
                duration_ms=more_ms,
            )


def _resend(draw: st.DrawFn, events: list[dict[str, Any]]) -> None:
    """Identical copies of some events, re-sent later in the stream (an SDK retry)."""
    if not events:
        return
    for _ in range(draw(st.integers(min_value=0, max_value=5))):
        original = events[draw(st.integers(min_value=0, max_value=len(events) - 1))]
        position = draw(st.integers(min_value=events.index(original) + 1, max_value=len(events)))
        events.insert(position, copy.deepcopy(original))


def first_difference(expected: Any, actual: Any, path: str = "$") -> str | None:
    """The path of the first value where ``actual`` differs from ``expected``, with both values."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if set(expected) != set(actual):
            return (
                f"{path}: keys differ: missing {sorted(set(expected) - set(actual))}, "
                f"extra {sorted(set(actual) - set(expected))}"
            )
        for key in sorted(expected):
            found = first_difference(expected[key], actual[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for index, (left, right) in enumerate(zip(expected, actual, strict=False)):
            found = first_difference(left, right, f"{path}[{index}]")
            if found:
                return found
        if len(expected) != len(actual):
            return f"{path}: length differs: oracle {expected!r}, engine {actual!r}"
        return None
    numbers = (int, float)
    if (
        isinstance(expected, numbers)
        and isinstance(actual, numbers)
        and not isinstance(expected, bool)
        and not isinstance(actual, bool)
    ):
        money = path.rsplit(".", 1)[-1] in MONEY_KEYS
        if expected == actual or (not money and math.isclose(expected, actual, rel_tol=1e-9)):
            return None
    elif expected == actual and type(expected) is type(actual):
        return None
    return f"{path}: oracle {expected!r}, engine {actual!r}"


@settings(
    max_examples=int(os.environ.get("MINIDRAMA_ORACLE_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenario=scenarios())
def test_every_computed_document_equals_the_reference(scenario):
    # GIVEN random realistic events of ~35 days, ingested into a fresh lake
    events, zone_name, currency, days, one_call = scenario
    app = AppConfig("app", timezone=zone_name, currency=currency)
    root = Path(tempfile.mkdtemp(prefix="metrics-oracle-"))
    try:
        lake = LocalStorage(root)
        ingest(lake, copy.deepcopy(events), app)

        # WHEN the engine computes a few days (in one call, or one by one latest first)
        if one_call:
            compute_days(lake, app, days)
        else:
            for day in reversed(days):
                compute_days(lake, app, [day])

        # THEN each stored document equals the reference, value by value
        for day in days:
            stored = without_generated_at(json.loads(lake.get_bytes(metrics_key(app.app_id, day))))
            # which engine ran is the product's own key (not in SPEC section 6): the embedded one
            assert stored.pop("engine") == "duckdb", day
            expected = reference_document(events, day, zone_name, currency)
            difference = first_difference(expected, stored)
            assert difference is None, f"{day} ({zone_name}): {difference}"
    finally:
        shutil.rmtree(root, ignore_errors=True)
