"""Property tests of the metrics on random event sets (hypothesis)."""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minidrama.config import AppConfig
from minidrama.lake import LocalStorage, metrics_key
from minidrama.metrics import compact_days, compute_days
from tests.metrics_support import RECEIVED_AT, event, ingest, without_generated_at

FIRST_DAY = date(2026, 11, 1)
DAYS = [FIRST_DAY + timedelta(days=n) for n in range(5)]
USERS = [f"u{n}" for n in range(6)]


@st.composite
def random_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=1, max_value=45))
    events = []
    for n in range(count):
        name = draw(
            st.sampled_from(
                [
                    "app_launch",
                    "app_launch",
                    "session_end",
                    "recharge_order",
                    "redeem_order",
                    "entrance_exposure",
                    "minis_visit",
                ]
            )
        )
        day = draw(st.integers(min_value=0, max_value=len(DAYS) - 1))
        minute = draw(st.integers(min_value=0, max_value=24 * 60 - 1))
        time = f"{DAYS[day].isoformat()}T{minute // 60:02d}:{minute % 60:02d}:00Z"
        common = {
            "os": draw(st.sampled_from(["ios", "android"])),
            "region": draw(st.sampled_from(["US", "GB", "PH"])),
            "session": f"s{draw(st.integers(min_value=0, max_value=8))}",
        }
        user = draw(st.sampled_from(USERS))
        event_id = (
            f"e{draw(st.integers(min_value=0, max_value=count + 5))}" if draw(st.booleans()) else f"x{n}"
        )
        if name == "app_launch":
            properties = {
                "entry_point": draw(st.sampled_from(["feed", "search"])),
                "success": draw(st.sampled_from([True, True, True, False])),
                "launch_ms": draw(st.integers(min_value=0, max_value=5000)),
                "gender": draw(st.sampled_from(["f", "m"])),
            }
        elif name == "session_end":
            properties = {"duration_ms": draw(st.integers(min_value=0, max_value=600_000))}
        elif name == "recharge_order":
            properties = {
                "order_id": f"o{draw(st.integers(min_value=0, max_value=6))}",
                "amount": draw(st.sampled_from([0.99, 4.99, 9.99, 1.25])),
                "currency": "USD",
            }
        elif name == "redeem_order":
            properties = {
                "order_id": f"r{draw(st.integers(min_value=0, max_value=6))}",
                "product_id": draw(st.sampled_from(["ep-1", "ep-2", "ep-3"])),
                "beans": 10,
            }
        else:
            properties = {}
        events.append(event(event_id, name, time, user, **common, **properties))
    return events


def _documents(lake: LocalStorage, app: AppConfig, days: list[date]) -> dict[date, dict[str, Any]]:
    return {
        day: without_generated_at(json.loads(lake.get_bytes(metrics_key(app.app_id, day)))) for day in days
    }


def _fresh_lake() -> tuple[LocalStorage, Path]:
    root = Path(tempfile.mkdtemp(prefix="metrics-property-"))
    return LocalStorage(root), root


PROPERTY_SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(events=random_events())
def test_counts_are_ordered_and_rates_are_ratios(events):
    lake, root = _fresh_lake()
    try:
        app = AppConfig("app")
        ingest(lake, events, app)
        compute_days(lake, app, DAYS)
        for document in _documents(lake, app, DAYS).values():
            for metrics in document["segments"].values():
                dashboard = metrics["dashboard"]
                assert dashboard["new_users"] <= dashboard["active_users"] <= dashboard["total_users"]
                behavior = metrics["behavior"]
                assert behavior["repeat_users"] <= behavior["active_users"]
                assert behavior["effectively_active_users"] <= behavior["active_users"]
                for kind in ("new", "active"):
                    for value in metrics["retention"][kind].values():
                        assert value["retained"] <= value["cohort_size"]
                        assert value["rate"] is None or 0 <= value["rate"] <= 1
                users = metrics["iap_users"]
                assert users["repeat_paying_users"] <= users["paying_users"]
                # paying users need no launch that day, so these rates may exceed 1 (SPEC: over active users)
                for rate in (users["paying_user_rate"], users["repeat_paying_user_rate"]):
                    assert rate is None or rate >= 0
                success = metrics["performance"]["loading_success_rate"]
                assert success is None or 0 <= success <= 1
                orders = metrics["iap_orders"]
                split = (
                    orders["new_payers"]["recharge_orders"] + orders["returning_payers"]["recharge_orders"]
                )
                assert split == orders["all"]["recharge_orders"]  # every recharger has a first recharge
    finally:
        shutil.rmtree(root, ignore_errors=True)


@PROPERTY_SETTINGS
@given(events=random_events(), order=st.permutations(DAYS), late_share=st.integers(min_value=0, max_value=3))
def test_any_order_recomputation_and_late_events_equal_one_clean_pass(events, order, late_share):
    app = AppConfig("app")
    clean, clean_root = _fresh_lake()
    messy, messy_root = _fresh_lake()
    # some events arrive late (a second request, received later); copies of an event_id that
    # differ are settled by arrival, so both lakes receive the same requests in the same order
    late = events[: len(events) * late_share // 4]
    on_time = events[len(late) :]
    arrivals = [
        (batch, RECEIVED_AT + timedelta(seconds=n)) for n, batch in enumerate((on_time, late)) if batch
    ]
    try:
        # one clean pass: everything present, days computed once, in date order
        for batch, received_at in arrivals:
            ingest(clean, batch, app, received_at)
        compute_days(clean, app, DAYS)
        expected = _documents(clean, app, DAYS)

        # the messy history: days computed in random order before the late events arrive, then
        # recomputed after them and a compaction, twice
        first_batch, first_received_at = arrivals[0]
        ingest(messy, first_batch, app, first_received_at)
        for day in order:
            compute_days(messy, app, [day])
        for batch, received_at in arrivals[1:]:
            ingest(messy, batch, app, received_at)
        compact_days(messy, app, DAYS[:2])
        for day in order:
            compute_days(messy, app, [day])
        compute_days(messy, app, list(reversed(order)))

        assert _documents(messy, app, DAYS) == expected
    finally:
        shutil.rmtree(clean_root, ignore_errors=True)
        shutil.rmtree(messy_root, ignore_errors=True)
