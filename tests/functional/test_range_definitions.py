"""One test per definition row of SPEC section 7.2, each isolating its rule on a tiny event set.

Unless a test says otherwise the range is R = [F, T] = 2026-11-10 .. 2026-11-12 (UTC app), and the
events are chosen so that the range value differs from a sum of the daily values or a one-day reading.
"""

from __future__ import annotations

import copy
from datetime import date, timedelta

import pytest

from minidrama.config import AppConfig
from minidrama.metrics import compute_days, ranges
from tests.metrics_support import compute, event, ingest, query

F = date(2026, 11, 10)
T = date(2026, 11, 12)
FUNNEL_STAGES = [
    "entrance_exposure",
    "entrance_click",
    "minis_visit",
    "last_free_episode_watch",
    "third_party_payment_panel_show",
    "third_party_payment_panel_click",
    "tiktok_payment_panel_show",
    "tiktok_payment_panel_click",
]
EMPTY_TOTAL = {"cohort_size": 0, "retained": 0, "rate": None}
EMPTY_LTV = {"cohort_size": 0, "revenue": 0.0, "value": None}


def at(day: str, clock: str = "12:00") -> str:
    """``at("11-10")`` is 2026-11-10 12:00 UTC."""
    return f"2026-{day}T{clock}:00Z"


def launch(event_id, user, time, **extra):
    extra.setdefault("entry_point", "feed")
    return event(event_id, "app_launch", time, user, **extra)


def session_end(event_id, user, time, duration_ms, **extra):
    return event(event_id, "session_end", time, user, duration_ms=duration_ms, **extra)


def recharge(event_id, user, order_id, amount, time, **extra):
    return event(
        event_id, "recharge_order", time, user, order_id=order_id, amount=amount, currency="USD", **extra
    )


def redeem(event_id, user, order_id, product, time, **extra):
    return event(
        event_id, "redeem_order", time, user, order_id=order_id, product_id=product, beans=10, **extra
    )


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(n) for n in range((last - first).days + 1)]


def range_document(lake, events, first=F, last=T, *, app=None, since=None, segments=None):
    """Ingest, compute every day from the first event day (or ``since``) through ``last``, query R."""
    app = app or AppConfig("app")
    ingest(lake, events, app)
    start = since or min([first, *(date.fromisoformat(e["event_time"][:10]) for e in events)])
    compute_days(lake, app, days(start, last))
    return query(lake, first, last, app, segments)


def range_segment(lake, events, first=F, last=T, name="all", app=None):
    return range_document(lake, events, first, last, app=app)["segments"][name]


def test_active_users_are_distinct_over_the_range(lake):
    events = [
        launch("a", "u1", at("11-10")),
        launch("b", "u1", at("11-11")),  # active on two days: counts once
        launch("c", "u2", at("11-12")),
        launch("d", "u3", at("11-09")),  # before F
        launch("e", "u3", at("11-13")),  # after T
        launch("f", "u4", at("11-11"), success=False),  # a failed launch is no activity
        event("g", "entrance_exposure", at("11-11"), "u5"),  # a page view is no launch
    ]
    metrics = range_segment(lake, events)
    # daily active: 1 + 1 + 1 = 3; distinct over R: u1, u2
    assert metrics["dashboard"]["active_users"] == 2
    assert metrics["behavior"]["active_users"] == 2


def test_new_users_first_launch_ever_is_in_the_range_in_any_segment(lake):
    events = [
        launch("a", "u1", at("11-10")),
        launch("b", "u1", at("11-11")),  # new on 11-10, counted once
        launch("c", "u2", at("11-01")),
        launch("d", "u2", at("11-11")),  # first launch before F: not new
        launch("e", "u3", at("11-05"), success=False),  # a failed launch is no first launch
        launch("f", "u3", at("11-12")),  # new
        launch("g", "u4", at("11-10"), os="android"),
        launch("h", "u4", at("11-11"), os="ios"),  # first launch ever (on android) is in R: new in ios
        launch("i", "u5", at("11-05"), os="android"),
        launch("j", "u5", at("11-11"), os="ios"),  # first launch ever before F: not new
    ]
    segments = range_document(lake, events)["segments"]
    # all: active u1..u5, new u1, u3, u4
    assert segments["all"]["dashboard"]["new_users"] == 3
    assert segments["all"]["behavior"]["new_users"] == 3
    # ios: active u1..u5; new u1, u3, u4 (the daily ios documents give 1 + 0 + 1: u4 was new on android)
    assert segments["os:ios"]["dashboard"]["active_users"] == 5
    assert segments["os:ios"]["dashboard"]["new_users"] == 3
    # android in R: only u4's launch on 11-10 (u5's was on 11-05)
    assert segments["os:android"]["dashboard"]["new_users"] == 1


def test_total_users_counts_launches_in_the_segment_up_to_t(lake):
    events = [
        launch("a", "u1", at("11-01")),  # before F only: still a total user
        launch("b", "u2", at("11-13")),  # after T
        launch("c", "u3", at("11-10"), os="android"),  # not an ios user
        launch("d", "u4", at("11-11"), success=False),
        launch("e", "u5", at("11-10")),
        launch("f", "u5", at("11-12")),  # counted once
        launch("g", "u6", at("11-12")),  # first launch on T: counted (a reading at F would miss it)
    ]
    segments = range_document(lake, events)["segments"]
    # ios: u1, u5, u6; all: and u3
    assert segments["os:ios"]["dashboard"]["total_users"] == 3
    assert segments["os:ios"]["behavior"]["total_users"] == 3
    assert segments["all"]["dashboard"]["total_users"] == 4
    assert segments["os:ios"]["dashboard"]["active_users"] == 2


def test_repeat_users_have_two_launches_anywhere_in_the_range_in_the_segment(lake):
    events = [
        launch("a", "u1", at("11-10")),
        launch("b", "u1", at("11-11")),  # one launch a day, two in R: repeat
        launch("c", "u2", at("11-09")),
        launch("d", "u2", at("11-11")),  # the other launch is before F: not repeat
        launch("e", "u3", at("11-12"), os="ios"),
        launch("f", "u3", at("11-12", "13:00"), os="android"),  # repeat in all, once in ios
    ]
    segments = range_document(lake, events)["segments"]
    # daily repeat users in all: 0 + 0 + 1; over R: u1, u3
    assert segments["all"]["behavior"]["repeat_users"] == 2
    assert segments["os:ios"]["behavior"]["repeat_users"] == 1


def test_visit_count_and_average_are_over_the_range(lake):
    events = [
        launch("a", "u1", at("11-10")),
        launch("b", "u1", at("11-11", "08:00")),
        launch("c", "u1", at("11-11", "09:00")),
        launch("d", "u2", at("11-12")),
        launch("e", "u2", at("11-12", "13:00"), success=False),  # not a visit
        launch("f", "u2", at("11-09")),  # before F
    ]
    behavior = range_segment(lake, events)["behavior"]
    # 4 launches by 2 users: 2.0 (the mean of the daily averages 1, 2, 1 would be 4/3)
    assert behavior["visit_count"] == 4
    assert behavior["average_visit_count"] == 2.0


def test_user_duration_sums_session_ends_over_the_range(lake):
    events = [
        launch("a", "u1", at("11-10"), session="s1"),
        session_end("b", "u1", at("11-10", "13:00"), 1000, session="s1"),
        launch("c", "u1", at("11-11"), session="s2"),
        session_end("d", "u1", at("11-11", "13:00"), 2000, session="s2"),
        launch("e", "u2", at("11-11"), session="s3"),
        session_end("f", "u2", at("11-12"), 500, session="s3"),  # ends on a day u2 did not launch
        launch("g", "u3", at("11-12")),
        session_end("h", "u3", at("11-09"), 9000),  # before F
        launch("i", "u4", at("11-10"), session="s4"),
        session_end("j", "u4", at("11-10", "13:00"), 100, session="s4"),
        launch("k", "u4", at("11-12"), session="s5"),
        session_end("l", "u4", at("11-12", "13:00"), 100, session="s5"),
    ]
    behavior = range_segment(lake, events)["behavior"]
    # user durations over R: u1 3000, u2 500, u3 0, u4 200 -> median (200 + 500) / 2
    assert behavior["median_duration_per_user_ms"] == 350
    # session ends in R: 100, 100, 500, 1000, 2000 (the daily medians are 550, 2000, 300)
    assert behavior["median_duration_per_session_ms"] == 500
    # u1, u2, u4 (daily: 2 + 1 + 1 = 4)
    assert behavior["effectively_active_users"] == 3


def test_profile_and_device_use_the_latest_launch_in_the_range_in_the_segment(lake):
    events = [
        launch("a", "u1", at("11-10"), gender="f", device_brand="apple"),
        launch("b", "u1", at("11-12"), os="android", region="GB", gender="m", age_group="18-24"),
        launch("c", "u1", at("11-13"), gender="x", device_brand="apple"),  # after T
        launch("d", "u2", at("11-01"), gender="f", device_brand="apple"),  # before F
        launch("e", "u2", at("11-11")),  # u2's latest launch in R carries nothing
    ]
    segments = range_document(lake, events)["segments"]
    # all: u1 by its 11-12 android launch, u2 by its 11-11 launch; only u1 is new in R
    assert segments["all"]["profile"]["active"] == {
        "gender": {"m": 1, "unknown": 1},
        "age_group": {"18-24": 1, "unknown": 1},
        "region": {"GB": 1, "US": 1},
    }
    assert segments["all"]["profile"]["new"] == {
        "gender": {"m": 1},
        "age_group": {"18-24": 1},
        "region": {"GB": 1},
    }
    assert segments["all"]["device"]["active"]["brand"] == {"unknown": 2}
    # ios: u1 by its 11-10 launch
    assert segments["os:ios"]["profile"]["active"]["gender"] == {"f": 1, "unknown": 1}
    assert segments["os:ios"]["device"]["new"]["brand"] == {"apple": 1}


def test_launches_of_one_instant_in_two_os_and_regions_take_the_greatest_event_id(lake):
    # u1 launches at the same instant on ios/US and android/GB (the facts keep the event id only
    # for such a user), and on another day in one os and region only (no event id kept there)
    events = [
        launch("e1", "u1", at("11-10"), gender="f"),
        launch("e2", "u1", at("11-10"), os="android", region="GB", gender="m"),
        launch("e3", "u2", at("11-11"), gender="f"),
        launch("e4", "u2", at("11-10"), os="android", region="GB", gender="m"),
    ]
    segments = range_document(lake, events)["segments"]
    # all: u1's latest launch is e2 (same instant, greater event id); u2's is e3 (later)
    assert segments["all"]["profile"]["active"]["gender"] == {"m": 1, "f": 1}
    assert segments["region:GB"]["profile"]["active"]["gender"] == {"m": 2}
    # and the same tie on the day's own document
    day = range_document(lake, [], F, F)["segments"]["all"]
    assert day["profile"]["active"]["gender"] == {"m": 2}
    # swapped ids: the ios launch wins
    swapped = [
        launch("e9", "u3", at("11-10", "08:00"), gender="x"),
        launch("e8", "u3", at("11-10", "08:00"), os="android", region="GB", gender="y"),
    ]
    assert range_segment(lake, swapped, name="all")["profile"]["active"]["gender"] == {"m": 1, "f": 1, "x": 1}


def test_a_later_day_with_only_session_ends_keeps_the_latest_launch_and_adds_its_duration(lake):
    events = [
        launch("a", "u1", at("11-10"), session_id="s1", gender="f", device_brand="apple"),
        session_end("b", "u1", at("11-10", "12:30"), 1_000, session_id="s1"),
        # 11-11: no launch, only a session end in the same os and region: a row without a launch
        session_end("c", "u1", at("11-11", "09:00"), 2_000, session_id="s9"),
    ]
    segment = range_segment(lake, events)
    # u1's latest launch in R is still the 11-10 one (the 11-11 row carries no launch attributes)
    assert segment["profile"]["active"]["gender"] == {"f": 1}
    assert segment["device"]["active"]["brand"] == {"apple": 1}
    # and the user's duration in R is both days' session ends
    assert segment["dashboard"]["median_duration_per_user_ms"] == 3_000.0
    assert segment["behavior"]["visit_count"] == 1


def test_entry_points_count_distinct_users_and_sessions_of_launches_in_the_range(lake):
    events = [
        launch("a", "u2", at("11-01"), session="s0", entry_point="feed"),  # before F
        session_end("b", "u2", at("11-10"), 50000, session="s0"),  # in R, but its launch is not
        launch("c", "u1", at("11-10"), session="s1", entry_point="feed"),
        session_end("d", "u1", at("11-10", "13:00"), 1000, session="s1"),
        launch("e", "u1", at("11-11", "23:00"), session="s2", entry_point="feed"),
        session_end("f", "u1", at("11-12", "00:30"), 3000, session="s2"),  # ends the next day
        launch("g", "u1", at("11-12"), session="s3", entry_point="search"),
        session_end("h", "u1", at("11-12", "13:00"), 500, session="s3"),
        launch("i", "u2", at("11-11"), session="s4", entry_point="search"),  # no session end
    ]
    entry_points = range_segment(lake, events)["entry_points"]
    assert entry_points == {
        # u1 twice through feed (daily active users 1 + 1); sessions s1 and s2
        "feed": {
            "active_users": 1,
            "new_users": 1,
            "launch_sessions": 2,
            "average_duration_per_session_ms": 2000.0,
        },
        # u1 (new in R) and u2 (not new); only s3 has a session end
        "search": {
            "active_users": 2,
            "new_users": 1,
            "launch_sessions": 2,
            "average_duration_per_session_ms": 500.0,
        },
    }


def test_funnel_counts_page_views_over_the_range(lake):
    events = [
        event("a", "entrance_exposure", at("11-09"), "u1"),  # before F
        event("b", "entrance_exposure", at("11-10"), "u1"),
        event("c", "entrance_exposure", at("11-10"), "u2"),
        event("d", "entrance_exposure", at("11-12"), "u1"),
        event("e", "entrance_exposure", at("11-12"), "u2"),
        event("f", "entrance_click", at("11-11"), "u1"),  # the only click (11-11 has no exposure)
        event("g", "minis_visit", at("11-12"), "u1"),
        event("h", "minis_visit", at("11-12"), "u2"),
        recharge("i", "u1", "o1", 1.0, at("11-11")),
        redeem("j", "u1", "r1", "ep-1", at("11-10")),
        redeem("k", "u2", "r2", "ep-1", at("11-12")),
    ]
    funnel = range_segment(lake, events)["funnel"]
    assert [stage["stage"] for stage in funnel["recharge"]] == [*FUNNEL_STAGES, "recharge_order"]
    assert [stage["stage"] for stage in funnel["redeem"]] == [*FUNNEL_STAGES, "redeem_order"]
    rates = [(s["pv"], s["rate_from_previous"], s["rate_from_first"]) for s in funnel["recharge"]]
    assert rates == [
        (4, None, 1.0),
        (1, 0.25, 0.25),
        (2, 2.0, 0.5),
        (0, 0.0, 0.0),
        (0, None, 0.0),
        (0, None, 0.0),
        (0, None, 0.0),
        (0, None, 0.0),
        (1, None, 0.25),
    ]
    assert (funnel["redeem"][8]["pv"], funnel["redeem"][8]["rate_from_first"]) == (2, 0.5)


def test_paying_and_repeat_paying_users_over_the_range_rated_against_its_active_users(lake):
    events = [
        launch("a", "u1", at("11-10")),
        launch("b", "u1", at("11-12")),
        launch("c", "u2", at("11-12")),
        launch("d", "u4", at("11-11")),
        recharge("e", "u1", "o1", 1.0, at("11-10")),
        recharge("f", "u1", "o2", 1.0, at("11-12")),  # one order a day, two in R: repeat paying
        recharge("g", "u2", "o0", 1.0, at("11-09")),  # before F
        recharge("h", "u2", "o3", 1.0, at("11-11")),
    ]
    users = range_segment(lake, events)["iap_users"]
    # active over R: u1, u2, u4 (daily 1 + 1 + 2); paying: u1, u2 (daily 1 + 1 + 1); repeat: u1 (daily 0)
    assert users["paying_users"] == 2
    assert users["paying_user_rate"] == 2 / 3
    assert users["repeat_paying_users"] == 1
    assert users["repeat_paying_user_rate"] == 1 / 3


def test_gmv_average_gmv_and_arppu_over_the_recharge_orders_in_the_range(lake):
    events = [
        recharge("a", "u1", "o1", 1.0, at("11-10")),
        recharge("b", "u1", "o2", 2.0, at("11-10", "13:00")),
        recharge("c", "u1", "o1", 1.0, at("11-11")),  # o1 sent again: the 11-10 copy stands
        recharge("d", "u2", "o3", 4.5, at("11-11")),
        recharge("e", "u1", "o4", 0.5, at("11-12")),
        recharge("f", "u2", "o5", 10.0, at("11-09")),  # before F
        recharge("g", "u2", "o6", 20.0, at("11-09", "23:59")),
        recharge("h", "u2", "o6", 20.0, at("11-10", "00:01")),  # its earliest copy is before F
    ]
    metrics = range_segment(lake, events)
    orders = metrics["iap_orders"]["all"]
    # o1, o2, o3, o4: 8.00 over 4 orders (daily averages 1.5, 4.5, 0.5)
    assert (orders["gmv"], orders["recharge_orders"], orders["average_gmv"]) == (8.0, 4, 2.0)
    # paying users u1, u2 (daily ARPPU 3.0, 4.5, 0.5)
    assert metrics["iap_users"]["arppu"] == 4.0


def test_orders_and_top_redeemed_products_over_the_range(lake):
    events = [
        recharge("a", "u1", "o1", 1.0, at("11-10")),
        recharge("b", "u1", "o2", 1.0, at("11-12")),
        recharge("c", "u1", "o3", 1.0, at("11-09")),  # before F
        redeem("d", "u1", "r1", "p1", at("11-10")),
        redeem("e", "u1", "r2", "p1", at("11-11")),  # p1 once a day, twice in R
        redeem("f", "u1", "r3", "p0", at("11-11")),
        redeem("g", "u1", "r4", "p2", at("11-12")),
        redeem("h", "u1", "r1", "p1", at("11-12")),  # r1 sent again: counts once, on 11-10
        redeem("i", "u1", "r5", "p3", at("11-09")),  # p3 has the most orders, but before F
        redeem("j", "u1", "r6", "p3", at("11-09")),
    ]
    orders = range_segment(lake, events)["iap_orders"]["all"]
    assert orders["recharge_orders"] == 2
    assert orders["redeem_orders"] == 4
    assert orders["top_redeemed_products"] == [
        {"product_id": "p1", "orders": 2},
        {"product_id": "p0", "orders": 1},
        {"product_id": "p2", "orders": 1},
    ]


def test_new_and_returning_payers_by_first_recharge_in_or_before_the_range(lake):
    events = [
        # u1: its redeem on 11-10 comes before its first recharge ever (11-11, in R): a new payer's order
        redeem("a", "u1", "r1", "p1", at("11-10")),
        recharge("b", "u1", "o1", 1.0, at("11-11")),
        # u2: first recharge before F: returning
        recharge("c", "u2", "o0", 50.0, at("11-05")),
        redeem("d", "u2", "r2", "p2", at("11-10")),
        recharge("e", "u2", "o2", 5.0, at("11-12")),
        # u3: its only recharge is after T: never recharged up to T, in all only
        redeem("f", "u3", "r3", "p3", at("11-11")),
        recharge("g", "u3", "o9", 16.0, at("11-13")),
        # u4: first recharge on 11-10, so its 11-12 order is still a new payer's (the 11-12 document
        # calls it returning)
        recharge("h", "u4", "o3", 2.0, at("11-10")),
        recharge("i", "u4", "o4", 3.0, at("11-12")),
    ]
    orders = range_segment(lake, events)["iap_orders"]
    new, returning, every = orders["new_payers"], orders["returning_payers"], orders["all"]
    assert (new["gmv"], new["recharge_orders"], new["average_gmv"], new["redeem_orders"]) == (6.0, 3, 2.0, 1)
    assert new["top_redeemed_products"] == [{"product_id": "p1", "orders": 1}]
    assert (returning["gmv"], returning["recharge_orders"], returning["redeem_orders"]) == (5.0, 1, 1)
    assert returning["top_redeemed_products"] == [{"product_id": "p2", "orders": 1}]
    assert (every["gmv"], every["recharge_orders"], every["redeem_orders"]) == (11.0, 4, 3)


def test_loading_success_rate_and_launch_speed_over_the_launches_in_the_range(lake):
    events = [
        launch("a", "u1", at("11-10"), launch_ms=1000),
        launch("b", "u2", at("11-10"), launch_ms=9000, success=False),
        launch("c", "u1", at("11-11"), launch_ms=2000),
        launch("d", "u2", at("11-11")),  # no launch_ms
        launch("e", "u1", at("11-12"), launch_ms=3000),
        launch("f", "u2", at("11-12"), launch_ms=6000),
        launch("g", "u3", at("11-12"), success=False),
        launch("h", "u3", at("11-09"), launch_ms=50000, success=False),  # before F
    ]
    performance = range_segment(lake, events)["performance"]
    # 5 of 7 launches in R succeeded (the mean of the daily rates 1/2, 1, 2/3 is 13/18)
    assert performance["loading_success_rate"] == 5 / 7
    # (1000 + 2000 + 3000 + 6000) / 4 (the mean of the daily means 1000, 2000, 4500 is 2500)
    assert performance["average_launch_ms"] == 3000.0


def test_retention_rows_per_cohort_day_and_totals_over_rows_with_a_value(lake):
    events = [
        launch("a", "u1", at("11-10")),
        launch("b", "u1", at("11-11")),
        launch("c", "u1", at("11-12")),
        launch("d", "u2", at("11-11")),
        launch("e", "u2", at("11-12"), os="android"),  # returns in another segment
        launch("f", "u3", at("11-10")),
        launch("g", "u4", at("11-01")),
        launch("h", "u4", at("11-10")),
        launch("i", "u4", at("11-12")),
    ]
    segments = range_document(lake, events)["segments"]
    new, active = segments["all"]["retention"]["new"], segments["all"]["retention"]["active"]
    # new cohorts: 11-10 {u1, u3} (u1 back on 11-11), 11-11 {u2} (back on 11-12), 11-12 {} (11-13 > T)
    assert new["cohorts"] == [
        {
            "cohort_date": "2026-11-10",
            "cohort_size": 2,
            "d1": {"retained": 1, "rate": 0.5},
            "d7": None,
            "d14": None,
            "d30": None,
        },
        {
            "cohort_date": "2026-11-11",
            "cohort_size": 1,
            "d1": {"retained": 1, "rate": 1.0},
            "d7": None,
            "d14": None,
            "d30": None,
        },
        {"cohort_date": "2026-11-12", "cohort_size": 0, "d1": None, "d7": None, "d14": None, "d30": None},
    ]
    assert new["d1"] == {"cohort_size": 3, "retained": 2, "rate": 2 / 3}
    # active cohorts: 11-10 {u1, u3, u4} (u1 back), 11-11 {u1, u2} (both back), 11-12 {u1, u2, u4}
    # whose d1 is null; u1 counts in both totalled cohorts: 5 (not 4 distinct users, not 8 with 11-12)
    assert [row["cohort_size"] for row in active["cohorts"]] == [3, 2, 3]
    assert [row["d1"] for row in active["cohorts"]] == [
        {"retained": 1, "rate": 1 / 3},
        {"retained": 2, "rate": 1.0},
        None,
    ]
    assert active["d1"] == {"cohort_size": 5, "retained": 3, "rate": 0.6}
    # no row reaches d7, d14 or d30 within R
    assert (active["d7"], active["d14"], active["d30"]) == (EMPTY_TOTAL, EMPTY_TOTAL, EMPTY_TOTAL)
    # in ios u2's return on android still counts
    assert segments["os:ios"]["retention"]["new"]["d1"] == {"cohort_size": 3, "retained": 2, "rate": 2 / 3}


def test_retention_d7_totals_only_the_cohorts_seven_days_before_t_or_earlier(lake):
    first, last = date(2026, 11, 1), date(2026, 11, 8)
    events = [
        launch("a", "u1", at("11-01")),
        launch("b", "u1", at("11-08")),  # d7 of 11-01
        launch("c", "u2", at("11-01")),
        launch("d", "u2", at("11-02")),  # d1 of 11-01
        launch("e", "u3", at("11-02")),
    ]
    retention = range_document(lake, events, first, last)["segments"]["all"]["retention"]
    new = retention["new"]
    assert [row["cohort_date"] for row in new["cohorts"]] == [str(day) for day in days(first, last)]
    assert [row["cohort_size"] for row in new["cohorts"]] == [2, 1, 0, 0, 0, 0, 0, 0]
    assert new["cohorts"][0]["d7"] == {"retained": 1, "rate": 0.5}
    assert [row["d7"] for row in new["cohorts"][1:]] == [None] * 7
    # an empty cohort within reach of T has a value, with a null rate; 11-08's d1 is null (11-09 > T)
    assert new["cohorts"][2]["d1"] == {"retained": 0, "rate": None}
    assert new["cohorts"][7]["d1"] is None
    assert new["d7"] == {"cohort_size": 2, "retained": 1, "rate": 0.5}
    # d1 over 11-01 .. 11-07: {u1, u2} kept u2, {u3} kept nobody
    assert new["d1"] == {"cohort_size": 3, "retained": 1, "rate": 1 / 3}
    # active d1: {u1, u2} on 11-01 and {u2, u3} on 11-02 -> 4 cohort members, u2 retained once
    assert retention["active"]["d1"] == {"cohort_size": 4, "retained": 1, "rate": 0.25}


@pytest.fixture
def stored_retention_checks(monkeypatch):
    """What each range query's check of the stored retention counts answered, in order."""
    answers = []
    check = ranges._stored_retention_holds

    def recording(connection, period):
        answers.append(check(connection, period))
        return answers[-1]

    monkeypatch.setattr(ranges, "_stored_retention_holds", recording)
    return answers


def test_retention_is_read_from_the_stored_counts_when_they_read_the_same_events(
    lake, stored_retention_checks, monkeypatch
):
    first, last = date(2026, 11, 1), date(2026, 11, 16)
    events = [
        launch("a", "u1", at("11-01")),
        launch("b", "u1", at("11-02"), os="android"),  # d1 of 11-01, in another segment
        launch("c", "u1", at("11-08")),  # d7 of 11-01, d6 of 11-02
        launch("d", "u1", at("11-15"), region="GB"),  # d14 of 11-01, d7 of 11-08
        launch("e", "u2", at("10-20")),  # first launch before the range: active, never new in it
        launch("f", "u2", at("11-01")),
        launch("g", "u2", at("11-08"), region="GB"),
        launch("h", "u3", at("11-08")),
        launch("i", "u3", at("11-09")),
        launch("j", "u3", at("11-09"), os="android"),  # one day, two segments
        launch("k", "u4", at("11-09"), os="android", region="GB"),
        launch("l", "u4", at("11-16"), os="android", region="GB"),
    ]
    # GIVEN every day computed once, from the same events: the days' stored counts agree
    stored = range_document(lake, events, first, last, since=date(2026, 10, 20))
    # (computing them wrote the weeks and the month that completed, also read from the counts)
    assert stored_retention_checks and all(stored_retention_checks)
    # THEN the document is the one worked out from the launches, segment by segment
    monkeypatch.setattr(ranges, "_stored_retention_holds", lambda connection, period: False)
    from_launches = query(lake, first, last)
    assert stored["segments"] == from_launches["segments"]
    new = stored["segments"]["all"]["retention"]["new"]
    # new cohorts: 11-01 {u1} (back on 11-02, 11-08, 11-15), 11-08 {u3} (back 11-09), 11-09 {u4}
    assert (new["d1"], new["d7"], new["d14"]) == (
        {"cohort_size": 3, "retained": 2, "rate": 2 / 3},
        {"cohort_size": 3, "retained": 2, "rate": 2 / 3},
        {"cohort_size": 1, "retained": 1, "rate": 1.0},
    )
    # active in GB: u2 on 11-08, u4 on 11-09 and 11-16, u1 on 11-15
    gb = stored["segments"]["region:GB"]["retention"]["active"]["cohorts"]
    assert [row["cohort_size"] for row in gb] == [0] * 7 + [1, 1] + [0] * 5 + [1, 1]
    assert gb[8]["d7"] == {"retained": 1, "rate": 1.0}  # u4 of 11-09 back on 11-16


def test_retention_after_a_cohort_day_alone_is_recomputed_is_worked_out_from_the_launches(
    lake, stored_retention_checks
):
    app = AppConfig("app")
    range_document(lake, [launch("a", "u1", at("11-10")), launch("b", "u2", at("11-11"))], app=app)
    # WHEN a late launch of u2 on 11-10 arrives and only 11-10 is computed again: 11-11 still
    # holds the returns of the 11-10 cohort it was computed against, without u2
    ingest(lake, [launch("late", "u2", at("11-10"))], app)
    compute_days(lake, app, [F])
    retention = query(lake, F, T)["segments"]["all"]["retention"]
    # THEN u2's return on 11-11 counts: the stored counts disagree (the check says so)
    assert retention["new"]["cohorts"][0]["cohort_size"] == 2
    assert retention["new"]["cohorts"][0]["d1"] == {"retained": 1, "rate": 0.5}
    assert retention["active"]["d1"] == {"cohort_size": 3, "retained": 1, "rate": 1 / 3}
    assert stored_retention_checks[-2:] == [True, False]


def test_ltv_of_the_new_users_of_the_range_and_its_narrowed_dn_cohorts(lake):
    first, last = date(2026, 11, 1), date(2026, 11, 10)
    events = [
        # u1: first launch 11-01 (in ios)
        launch("a", "u1", at("11-01")),
        recharge("b", "u1", "o1", 1.0, at("11-01"), os="android"),  # d0; another segment still counts
        recharge("c", "u1", "o2", 2.0, at("11-05")),  # within d7 (11-01 .. 11-08)
        recharge("d", "u1", "o3", 4.0, at("11-09")),  # after 11-08: range only
        recharge("e", "u1", "o4", 8.0, at("11-12")),  # after T
        # u2: first launch 11-05; 11-12 > T so not in the d7 cohort
        recharge("f", "u2", "o5", 0.5, at("11-04"), os="android"),  # before its first launch: range only
        launch("g", "u2", at("11-05")),
        recharge("h", "u2", "o6", 16.0, at("11-05")),
        # u3: active in R but first launched before F: in no cohort
        launch("i", "u3", at("10-25")),
        launch("j", "u3", at("11-02")),
        recharge("k", "u3", "o7", 100.0, at("11-02")),
    ]
    ltv = range_document(lake, events, first, last)["segments"]["os:ios"]["iap_users"]["ltv"]
    # range: u1 1 + 2 + 4, u2 0.5 + 16
    assert ltv["range"] == {"cohort_size": 2, "revenue": 23.5, "value": 11.75}
    # d0: u1 on 11-01, u2 on 11-05
    assert ltv["d0"] == {"cohort_size": 2, "revenue": 17.0, "value": 8.5}
    # d7: u1 alone, on 11-01 .. 11-08
    assert ltv["d7"] == {"cohort_size": 1, "revenue": 3.0, "value": 3.0}
    assert ltv["d30"] == EMPTY_LTV


@pytest.mark.parametrize("n", [7, 30])
def test_ltv_dn_window_is_c_to_c_plus_n(lake, n):
    first = date(2026, 10, 1)
    last = first + timedelta(n + 1)

    def on(offset: int) -> str:
        return f"{first + timedelta(offset)}T12:00:00Z"

    events = [
        launch("a", "u1", on(0)),  # C = F: C + N <= T
        recharge("b", "u1", "o1", 1.0, on(n)),  # the last day of its window
        recharge("c", "u1", "o2", 2.0, on(n + 1)),  # the day after
        launch("d", "u2", on(2)),  # C + N = T + 1: not in the dN cohort
        recharge("e", "u2", "o3", 4.0, on(2)),
    ]
    ltv = range_document(lake, events, first, last)["segments"]["all"]["iap_users"]["ltv"]
    assert ltv[f"d{n}"] == {"cohort_size": 1, "revenue": 1.0, "value": 1.0}
    assert ltv["range"] == {"cohort_size": 2, "revenue": 7.0, "value": 3.5}


def test_segments_are_those_seen_on_any_day_of_the_range(lake):
    events = [
        launch("a", "u1", at("11-10"), os="ios", region="US"),
        session_end("b", "u2", at("11-11"), 7, os="android", region="GB"),
        launch("c", "u3", at("11-12"), os="harmonyos", region="DE", success=False),
        redeem("d", "u4", "r1", "p1", at("11-09"), os="windows", region="FR"),  # before F
        event("e", "custom_event", at("11-11"), "u5", os="linux", region="JP"),  # custom: no segment
        launch("f", "u6", at("11-13"), os="tizen", region="KR"),  # after T
    ]
    segments = range_document(lake, events)["segments"]
    assert set(segments) == {
        "all",
        "os:ios",
        "os:android",
        "os:harmonyos",
        "region:US",
        "region:GB",
        "region:DE",
    }
    assert segments["os:android"]["behavior"]["median_duration_per_session_ms"] == 7
    assert segments["region:DE"]["performance"]["loading_success_rate"] == 0.0


def test_a_segment_filter_keeps_only_those_segments(lake):
    events = [
        launch("a", "u1", at("11-10"), os="ios", region="US"),
        launch("b", "u2", at("11-10"), os="android", region="GB"),
        launch("c", "u2", at("11-12"), os="android", region="US"),
        recharge("d", "u2", "o1", 3.0, at("11-11"), os="android", region="GB"),
    ]
    full = range_document(lake, events)
    filtered = query(lake, F, T, AppConfig("app"), ["os:android", "region:GB"])
    assert set(filtered["segments"]) == {"os:android", "region:GB"}
    assert filtered["segments"]["os:android"] == full["segments"]["os:android"]
    assert filtered["segments"]["region:GB"] == full["segments"]["region:GB"]
    assert filtered["segments"]["os:android"]["dashboard"]["active_users"] == 1
    assert filtered["segments"]["region:GB"]["iap_orders"]["all"]["gmv"] == 3.0


def test_the_range_envelope(lake):
    document = range_document(lake, [launch("a", "u1", at("11-10"))])
    assert set(document) == {
        "schema_version",
        "kind",
        "app_id",
        "from",
        "to",
        "timezone",
        "currency",
        "generated_at",
        "segments",
    }
    assert (document["schema_version"], document["kind"], document["app_id"]) == (1, "range", "app")
    assert (document["from"], document["to"]) == ("2026-11-10", "2026-11-12")
    assert (document["timezone"], document["currency"]) == ("UTC", "USD")
    assert isinstance(document["generated_at"], str)


def test_range_days_are_calendar_days_in_the_app_timezone(lake):
    app = AppConfig("app", timezone="Asia/Kolkata")  # UTC+05:30
    events = [
        launch("a", "u1", "2026-11-09T18:29:59Z"),  # 23:59:59 on 11-09: before F
        launch("b", "u2", "2026-11-09T18:30:00Z"),  # 00:00 on 11-10
        launch("c", "u3", "2026-11-09T18:30:00Z"),
        launch("d", "u4", "2026-11-11T18:29:59Z"),  # 23:59:59 on 11-11
        launch("e", "u5", "2026-11-11T18:30:00Z"),  # 00:00 on 11-12: after T
    ]
    last = date(2026, 11, 11)
    document = range_document(lake, events, F, last, app=app, since=date(2026, 11, 9))
    assert document["timezone"] == "Asia/Kolkata"
    # u2, u3, u4 (UTC days 11-10 .. 11-11 would hold u4 and u5)
    assert document["segments"]["all"]["dashboard"]["active_users"] == 3
    assert document["segments"]["all"]["dashboard"]["total_users"] == 4


def without_range_forms(metrics):
    metrics = copy.deepcopy(metrics)
    del metrics["retention"]
    del metrics["iap_users"]["ltv"]
    return metrics


# history on 11-08 and 11-09, a busy 11-10, and an event after it
ONE_DAY_EVENTS = [
    launch("h1", "u1", at("11-08"), os="android", region="GB", entry_point="search"),
    recharge("h2", "u1", "o0", 3.0, at("11-08"), os="android", region="GB"),
    redeem("h3", "u4", "r0", "p9", at("11-09")),
    launch("a", "u1", at("11-10", "08:00"), session="s1", gender="f", device_brand="apple", launch_ms=800),
    launch("b", "u1", at("11-10", "09:00"), session="s2", entry_point="search", os="android", region="GB"),
    launch("c", "u2", at("11-10", "10:00"), session="s3", age_group="25-34", device_model="x1"),
    launch("d", "u3", at("11-10", "11:00"), success=False, launch_ms=5000),
    session_end("e", "u1", at("11-10", "12:00"), 4000, session="s1"),
    session_end("f", "u2", at("11-10", "13:00"), 1000, session="s3"),
    event("g", "entrance_exposure", at("11-10"), "u2"),
    event("i", "entrance_click", at("11-10"), "u2"),
    event("j", "minis_visit", at("11-10"), "u2", os="android"),
    recharge("k", "u1", "o1", 2.5, at("11-10", "14:00")),
    recharge("l", "u2", "o2", 1.25, at("11-10", "15:00"), os="android"),
    recharge("m", "u2", "o3", 1.25, at("11-10", "16:00")),
    redeem("n", "u1", "r1", "p1", at("11-10")),
    redeem("o", "u4", "r2", "p2", at("11-10")),
    launch("p", "u4", at("11-11")),
]


@pytest.mark.parametrize("day", [date(2026, 11, 8), date(2026, 11, 10)])
def test_a_one_day_range_equals_that_days_document_except_retention_and_ltv(lake, day):
    document = range_document(lake, ONE_DAY_EVENTS, day, day)
    daily = compute(lake, day)
    assert (document["from"], document["to"]) == (str(day), str(day))
    assert set(document["segments"]) == set(daily["segments"])
    for name, metrics in document["segments"].items():
        assert without_range_forms(metrics) == without_range_forms(daily["segments"][name]), name


def test_a_one_day_range_has_one_cohort_row_without_dn_and_ltv_of_that_day(lake):
    document = range_document(lake, ONE_DAY_EVENTS, F, F)
    daily = compute(lake, F)
    for name, metrics in document["segments"].items():
        retention = metrics["retention"]["new"]
        new_users = metrics["dashboard"]["new_users"]
        assert retention["cohorts"] == [
            {
                "cohort_date": "2026-11-10",
                "cohort_size": new_users,
                "d1": None,
                "d7": None,
                "d14": None,
                "d30": None,
            }
        ], name
        assert retention["d1"] == EMPTY_TOTAL, name
        # every new user's C is F, so d0 is the range form; no one reaches d7 or d30 by T = F
        ltv, daily_d0 = metrics["iap_users"]["ltv"], daily["segments"][name]["iap_users"]["ltv"]["d0"]
        assert (
            ltv["d0"] == ltv["range"] == {key: daily_d0[key] for key in ("cohort_size", "revenue", "value")}
        )
        assert ltv["d7"] == ltv["d30"] == EMPTY_LTV, name
    # u2 is new on 11-10 and paid 2.50 that day in any segment (1.25 on android, 1.25 on ios)
    assert document["segments"]["all"]["iap_users"]["ltv"]["range"] == {
        "cohort_size": 1,
        "revenue": 2.5,
        "value": 2.5,
    }
