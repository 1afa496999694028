"""The range document of the test oracle (tests/oracle.py, SPEC section 7), checked by hand.

A small event set (five users over ten days, UTC) whose range document for R = [03-02, 03-09]
is worked out by hand in the comments below, then the SPEC 7.1 rule that a one-day range gives
the daily document's values except ``retention`` and ``iap_users.ltv``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.metrics_support import event
from tests.oracle import reference_document, reference_range_document

F = date(2026, 3, 2)
T = date(2026, 3, 9)
GB_ANDROID = {"os": "android", "region": "GB"}


def at(day: int, clock: str) -> str:
    return f"2026-03-{day:02d}T{clock}:00Z"


def launch(event_id: str, user: str, time: str, entry_point: str = "feed", **extra: Any) -> dict[str, Any]:
    return event(event_id, "app_launch", time, user, entry_point=entry_point, **extra)


def session_end(event_id: str, user: str, time: str, session: str, duration_ms: int, **extra: Any):
    return event(event_id, "session_end", time, user, session=session, duration_ms=duration_ms, **extra)


def recharge(event_id: str, user: str, time: str, order_id: str, amount: float, **extra: Any):
    return event(
        event_id, "recharge_order", time, user, order_id=order_id, amount=amount, currency="USD", **extra
    )


def redeem(event_id: str, user: str, time: str, order_id: str, product: str, **extra: Any):
    return event(
        event_id, "redeem_order", time, user, order_id=order_id, product_id=product, beans=10, **extra
    )


# Everything is ios / US unless marked GB_ANDROID. First launches: A 03-01 (before R), B 03-02,
# E 03-04, C 03-05 (all three new in R), D 03-10 (after R: in nothing). First recharges: A 03-01
# (before F: returning payer), B 03-02 and C 03-05 (new payers), E 03-10 (after T: E "never
# recharged up to T", so E's redeem counts in "all" only).
EVENTS = [
    # 03-01, before R
    launch("a1", "A", at(1, "09:00"), session="sA1"),
    session_end("a1-end", "A", at(1, "09:30"), "sA1", 100_000),
    recharge("a1-pay", "A", at(1, "09:10"), "o-a1", 5.00),
    # 03-02
    session_end("a1-late-end", "A", at(2, "00:10"), "sA1", 20_000),  # a session launched before R
    launch("a2", "A", at(2, "08:00"), session="sA2"),
    session_end("a2-end", "A", at(2, "08:30"), "sA2", 60_000),
    launch("a3", "A", at(2, "20:00"), "search", session="sA3"),
    launch("b0", "B", at(2, "09:59"), success=False),
    launch("b1", "B", at(2, "10:00"), session="sB1", launch_ms=800, gender="male"),
    launch("b1", "B", at(2, "10:00"), session="sB1", launch_ms=800, gender="male"),  # re-sent copy
    session_end("b1-end", "B", at(2, "10:20"), "sB1", 30_000),
    recharge("b1-pay", "B", at(2, "10:05"), "o-b1", 1.99),
    event("b-exp", "entrance_exposure", at(2, "09:58"), "B"),
    event("b-click", "entrance_click", at(2, "09:58"), "B"),
    # 03-03
    recharge("a2-pay", "A", at(3, "12:00"), "o-a2", 2.00),
    event("a-exp", "entrance_exposure", at(3, "12:00"), "A"),
    event("a-share", "share_click", at(3, "12:01"), "A", region="JP"),  # custom: no region:JP
    launch("b2", "B", at(3, "11:00"), "push", session="sB2"),
    session_end("b2-end", "B", at(3, "11:30"), "sB2", 90_000),
    # 03-04
    launch("e1", "E", at(4, "15:00"), session="sE1"),
    redeem("e1-redeem", "E", at(4, "15:10"), "x-e1", "p1"),
    redeem("e1-redeem-again", "E", at(4, "15:20"), "x-e1", "p1"),  # same order later: not counted
    event("e-exp", "entrance_exposure", at(4, "14:59"), "E"),
    # 03-05
    launch("c1", "C", at(5, "07:00"), session="sC1", launch_ms=1200, **GB_ANDROID),
    session_end("c1-end", "C", at(5, "07:45"), "sC1", 45_000, **GB_ANDROID),
    recharge("c1-pay", "C", at(5, "07:10"), "o-c1", 10, **GB_ANDROID),
    recharge("b2-pay", "B", at(5, "18:00"), "o-b2", 3.00),
    redeem("b1-redeem", "B", at(5, "18:05"), "x-b1", "p2"),
    # 03-06
    launch("c2", "C", at(6, "07:00"), "search", session="sC2", **GB_ANDROID),
    session_end("c2-end", "C", at(6, "07:30"), "sC2", 25_000, **GB_ANDROID),
    # 03-08
    recharge("c2-pay", "C", at(8, "20:00"), "o-c2", 0.50, **GB_ANDROID),
    # 03-09, the last day of R
    launch("a4", "A", at(9, "09:00"), session="sA4"),
    launch("b3", "B", at(9, "09:00"), session="sB3", gender="female"),
    redeem("b2-redeem", "B", at(9, "09:05"), "x-b2", "p1"),
    # 03-10, after R
    recharge("b3-pay", "B", at(10, "08:00"), "o-b3", 4.00),
    recharge("e1-pay", "E", at(10, "08:00"), "o-e1", 1.00),
    launch("d1", "D", at(10, "08:00"), os="harmonyos", region="FR"),
]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return reference_range_document(EVENTS, F, T, app_id="demo")


def test_the_envelope_and_the_segments_seen_in_the_range(document):
    assert {key: value for key, value in document.items() if key != "segments"} == {
        "schema_version": 1,
        "kind": "range",
        "app_id": "demo",
        "from": "2026-03-02",
        "to": "2026-03-09",
        "timezone": "UTC",
        "currency": "USD",
    }
    # D (harmonyos / FR) only has events after T; the JP event is a custom one.
    assert list(document["segments"]) == ["all", "os:android", "os:ios", "region:GB", "region:US"]


def test_users_visits_and_durations(document):
    metrics = document["segments"]["all"]
    # Launches in R: A a2 a3 a4, B b1 b2 b3 (b0 failed, b1's copy counts once), C c1 c2, E e1.
    # Active: A B C E. New: B C E (A first launched on 03-01). Total (any day <= T): A B C E, not D.
    assert metrics["dashboard"] == {
        "total_users": 4,
        "active_users": 4,
        "new_users": 3,
        # User durations: the session_end events in R, whichever launch their session belongs to
        # (A's 100000 on 03-01 is outside): A 20000 + 60000 = 80000, B 30000 + 90000 = 120000,
        # C 45000 + 25000 = 70000, E 0 -> sorted 0, 70000, 80000, 120000 -> (70000 + 80000) / 2.
        "median_duration_per_user_ms": 75_000.0,
    }
    behavior = metrics["behavior"]
    assert behavior["repeat_users"] == 3  # A 3 launches, B 3, C 2, E 1
    assert behavior["visit_count"] == 9
    assert behavior["average_visit_count"] == 9 / 4
    # Sessions ended in R: 20000, 25000, 30000, 45000, 60000, 90000 -> (30000 + 45000) / 2.
    assert behavior["median_duration_per_session_ms"] == 37_500.0
    assert behavior["effectively_active_users"] == 3  # E has no session_end
    # A failed launch out of ten attempts; launch_ms on b1 (800) and c1 (1200).
    assert metrics["performance"] == {"loading_success_rate": 0.9, "average_launch_ms": 1000.0}


def test_profile_uses_each_users_latest_launch_in_the_range(document):
    profile = document["segments"]["all"]["profile"]
    # B's latest launch in R is b3 (female); b1 said male.
    assert profile["active"]["gender"] == {"female": 1, "unknown": 3}
    assert profile["new"]["gender"] == {"female": 1, "unknown": 2}
    assert profile["active"]["region"] == {"US": 3, "GB": 1}


def test_entry_points(document):
    # feed: a2 b1 e1 c1 a4 b3; its sessions that ended in R: sA2 60000, sB1 30000, sC1 45000
    # (sA1 ended in R too, but its feed launch was on 03-01, before R).
    # search: a3 c2 (sC2 25000). push: b2 (sB2 90000).
    assert document["segments"]["all"]["entry_points"] == {
        "feed": {
            "active_users": 4,
            "new_users": 3,
            "launch_sessions": 6,
            "average_duration_per_session_ms": 45_000.0,
        },
        "push": {
            "active_users": 1,
            "new_users": 1,
            "launch_sessions": 1,
            "average_duration_per_session_ms": 90_000.0,
        },
        "search": {
            "active_users": 2,
            "new_users": 1,
            "launch_sessions": 2,
            "average_duration_per_session_ms": 25_000.0,
        },
    }


def test_funnel_page_views_over_the_range(document):
    funnel = document["segments"]["all"]["funnel"]
    # Exposures by B (03-02), A (03-03), E (03-04); one click (B). Recharges in R: o-b1 o-a2 o-c1
    # o-b2 o-c2; redeems: x-e1 (once), x-b1, x-b2.
    assert [stage["pv"] for stage in funnel["recharge"]] == [3, 1, 0, 0, 0, 0, 0, 0, 5]
    assert [stage["pv"] for stage in funnel["redeem"]] == [3, 1, 0, 0, 0, 0, 0, 0, 3]
    assert funnel["recharge"][1]["rate_from_previous"] == 1 / 3
    assert funnel["recharge"][2]["rate_from_previous"] == 0.0
    assert funnel["recharge"][3]["rate_from_previous"] is None  # 0 / 0
    assert funnel["recharge"][8]["rate_from_previous"] is None  # 5 / 0
    assert funnel["recharge"][8]["rate_from_first"] == 5 / 3


def test_paying_users_and_orders(document):
    metrics = document["segments"]["all"]
    # Payers in R: A (o-a2), B (o-b1, o-b2), C (o-c1, o-c2); GMV 2.00 + 1.99 + 3.00 + 10 + 0.50.
    iap = {key: value for key, value in metrics["iap_users"].items() if key != "ltv"}
    assert iap == {
        "paying_users": 3,
        "paying_user_rate": 0.75,
        "repeat_paying_users": 2,
        "repeat_paying_user_rate": 0.5,
        "arppu": 5.83,  # 17.49 / 3
    }
    orders = metrics["iap_orders"]
    assert orders["all"] == {
        "gmv": 17.49,
        "average_gmv": 3.5,  # 17.49 / 5 = 3.498
        "recharge_orders": 5,
        "redeem_orders": 3,
        "top_redeemed_products": [{"product_id": "p1", "orders": 2}, {"product_id": "p2", "orders": 1}],
    }
    # New payers (first recharge in R): B and C, with their redeems x-b1 (p2) and x-b2 (p1).
    assert orders["new_payers"] == {
        "gmv": 15.49,
        "average_gmv": 3.87,  # 15.49 / 4 = 3.8725
        "recharge_orders": 4,
        "redeem_orders": 2,
        "top_redeemed_products": [{"product_id": "p1", "orders": 1}, {"product_id": "p2", "orders": 1}],
    }
    # Returning (first recharge before F): A. E's redeem is in "all" only (first recharge after T).
    assert orders["returning_payers"] == {
        "gmv": 2.0,
        "average_gmv": 2.0,
        "recharge_orders": 1,
        "redeem_orders": 0,
        "top_redeemed_products": [],
    }


def row(day: int, size: int, d1: tuple[int, float | None] | None, d7: tuple[int, float | None] | None):
    """A cohort row of R; d14 and d30 are always null since R has 8 days."""
    pair = {
        name: None if value is None else {"retained": value[0], "rate": value[1]}
        for name, value in (("d1", d1), ("d7", d7))
    }
    return {"cohort_date": f"2026-03-{day:02d}", "cohort_size": size, **pair, "d14": None, "d30": None}


def test_retention_of_new_users(document):
    retention = document["segments"]["all"]["retention"]["new"]
    # Launch days: A 01 02 09, B 02 03 09, C 05 06, E 04. d7 exists for 03-02 only (03-09 <= T),
    # d1 for 03-02 … 03-08.
    assert retention["cohorts"] == [
        row(2, 1, (1, 1.0), (1, 1.0)),  # {B}: back on 03-03 and on 03-09
        row(3, 0, (0, None), None),
        row(4, 1, (0, 0.0), None),  # {E}: not back on 03-05
        row(5, 1, (1, 1.0), None),  # {C}: back on 03-06
        row(6, 0, (0, None), None),
        row(7, 0, (0, None), None),
        row(8, 0, (0, None), None),
        row(9, 0, None, None),  # 03-10 is after T
    ]
    assert retention["d1"] == {"cohort_size": 3, "retained": 2, "rate": 2 / 3}
    assert retention["d7"] == {"cohort_size": 1, "retained": 1, "rate": 1.0}
    assert retention["d14"] == {"cohort_size": 0, "retained": 0, "rate": None}
    assert retention["d30"] == {"cohort_size": 0, "retained": 0, "rate": None}


def test_retention_of_active_users(document):
    retention = document["segments"]["all"]["retention"]["active"]
    assert retention["cohorts"] == [
        row(2, 2, (1, 0.5), (2, 1.0)),  # {A, B}: B back on 03-03 (A only paid); both on 03-09
        row(3, 1, (0, 0.0), None),  # {B}
        row(4, 1, (0, 0.0), None),  # {E}
        row(5, 1, (1, 1.0), None),  # {C}
        row(6, 1, (0, 0.0), None),  # {C}
        row(7, 0, (0, None), None),
        row(8, 0, (0, None), None),
        row(9, 2, None, None),  # {A, B}
    ]
    assert retention["d1"] == {"cohort_size": 6, "retained": 2, "rate": 1 / 3}
    assert retention["d7"] == {"cohort_size": 2, "retained": 2, "rate": 1.0}


def test_ltv_of_the_new_users_of_the_range(document):
    # Cohort: B (first launch 03-02), E (03-04), C (03-05). Recharges: B 1.99 (02), 3.00 (05),
    # 4.00 (10, after T); C 10 (05), 0.50 (08); E 1.00 (10, after T).
    assert document["segments"]["all"]["iap_users"]["ltv"] == {
        # Days F … T: B 4.99, C 10.50, E 0 -> 15.49 / 3 = 5.1633
        "range": {"cohort_size": 3, "revenue": 15.49, "value": 5.16},
        # Each on their first day: B 1.99, E 0, C 10 -> 11.99 / 3 = 3.9967
        "d0": {"cohort_size": 3, "revenue": 11.99, "value": 4.0},
        # Only B has C + 7 <= T (E: 03-11, C: 03-12); B on 03-02 … 03-09: 1.99 + 3.00.
        "d7": {"cohort_size": 1, "revenue": 4.99, "value": 4.99},
        "d30": {"cohort_size": 0, "revenue": 0.0, "value": None},
    }
    # In os:android the cohort is C alone, who is too recent for d7.
    android = document["segments"]["os:android"]
    assert android["dashboard"]["active_users"] == 1
    assert android["iap_users"]["ltv"] == {
        "range": {"cohort_size": 1, "revenue": 10.5, "value": 10.5},
        "d0": {"cohort_size": 1, "revenue": 10.0, "value": 10.0},
        "d7": {"cohort_size": 0, "revenue": 0.0, "value": None},
        "d30": {"cohort_size": 0, "revenue": 0.0, "value": None},
    }


def test_a_segment_counts_only_its_own_events(document):
    ios = document["segments"]["os:ios"]
    assert ios["dashboard"]["active_users"] == 3  # A B E
    assert ios["dashboard"]["new_users"] == 2  # B E
    assert ios["iap_orders"]["all"]["gmv"] == 6.99  # 1.99 + 2.00 + 3.00
    # C's cohort row is in os:android only; d1 retention is launch in any segment.
    assert document["segments"]["region:GB"]["retention"]["new"]["cohorts"][3] == row(5, 1, (1, 1.0), None)


def _without_range_forms(document: dict[str, Any]) -> dict[str, Any]:
    """The segments without ``retention`` and ``iap_users.ltv``."""
    segments = {}
    for name, metrics in document["segments"].items():
        kept = {key: value for key, value in metrics.items() if key != "retention"}
        kept["iap_users"] = {key: value for key, value in metrics["iap_users"].items() if key != "ltv"}
        segments[name] = kept
    return segments


@pytest.mark.parametrize("timezone", ["UTC", "Asia/Tokyo", "America/Los_Angeles"])
def test_a_one_day_range_is_the_daily_document_except_retention_and_ltv(timezone):
    for offset in range(-1, 11):
        day = date(2026, 3, 1) + timedelta(days=offset)
        daily = reference_document(EVENTS, day, timezone)
        one_day = reference_range_document(EVENTS, day, day, timezone)
        assert one_day["from"] == one_day["to"] == daily["date"]
        assert _without_range_forms(one_day) == _without_range_forms(daily), day
        for name, metrics in one_day["segments"].items():
            # A one-day range has no retention pair (D + N > D) and its d0 LTV is the daily d0.
            for group in ("new", "active"):
                retention = metrics["retention"][group]
                assert [cohort["cohort_date"] for cohort in retention["cohorts"]] == [day.isoformat()]
                assert retention["d1"] == {"cohort_size": 0, "retained": 0, "rate": None}
            daily_d0 = dict(daily["segments"][name]["iap_users"]["ltv"]["d0"])
            del daily_d0["cohort_date"]
            assert metrics["iap_users"]["ltv"]["d0"] == daily_d0
            assert metrics["iap_users"]["ltv"]["range"] == daily_d0


def test_a_retention_pair_of_the_range_is_that_of_the_daily_document_of_its_last_day():
    first, last = date(2026, 3, 1), date(2026, 3, 10)
    document = reference_range_document(EVENTS, first, last)
    for name, metrics in document["segments"].items():
        for group in ("new", "active"):
            for cohort in metrics["retention"][group]["cohorts"]:
                cohort_date = date.fromisoformat(cohort["cohort_date"])
                for offset in (1, 7):
                    day = cohort_date + timedelta(days=offset)
                    daily = reference_document(EVENTS, day)["segments"].get(name)
                    if day > last or daily is None:
                        continue
                    expected = daily["retention"][group][f"d{offset}"]
                    assert cohort["cohort_size"] == expected["cohort_size"]
                    assert cohort[f"d{offset}"] == {
                        "retained": expected["retained"],
                        "rate": expected["rate"],
                    }


def test_a_range_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValueError):
        reference_range_document(EVENTS, T, F)
