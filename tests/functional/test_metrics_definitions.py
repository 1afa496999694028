"""One test per definition row of SPEC section 6, each isolating its rule on a tiny event set."""

from __future__ import annotations

from datetime import date

from minidrama.config import AppConfig
from tests.metrics_support import compute, event, ingest

D = date(2026, 11, 10)
ON_D = "2026-11-10T12:00:00Z"


def launch(event_id, user, time=ON_D, **extra):
    extra.setdefault("entry_point", "feed")
    return event(event_id, "app_launch", time, user, **extra)


def recharge(event_id, user, order_id, amount, time=ON_D, **extra):
    return event(
        event_id, "recharge_order", time, user, order_id=order_id, amount=amount, currency="USD", **extra
    )


def redeem(event_id, user, order_id, product, time=ON_D, **extra):
    return event(
        event_id, "redeem_order", time, user, order_id=order_id, product_id=product, beans=10, **extra
    )


def segment(lake, events, name="all", day=D, app=None):
    ingest(lake, events, app)
    return compute(lake, day, app)["segments"][name]


def test_active_users_a_failed_launch_does_not_make_a_user_active(lake):
    metrics = segment(lake, [launch("a", "u1"), launch("b", "u2", success=False)])
    assert metrics["dashboard"]["active_users"] == 1
    assert metrics["performance"]["loading_success_rate"] == 0.5


def test_new_users_first_successful_launch_ever_decides_in_any_segment(lake):
    # u1 launched on android before D, so on ios on D it is active but not new
    events = [
        launch("a", "u1", "2026-11-01T10:00:00Z", os="android"),
        launch("b", "u1", os="ios"),
        launch("c", "u2", "2026-11-01T10:00:00Z", success=False),  # a failed launch is not a first launch
        launch("d", "u2"),
    ]
    metrics = segment(lake, events, "os:ios")
    assert metrics["dashboard"]["active_users"] == 2
    assert metrics["dashboard"]["new_users"] == 1


def test_total_users_counts_launches_in_the_segment_up_to_d_only(lake):
    events = [
        launch("a", "u1", "2026-10-01T10:00:00Z", os="android"),  # android only: not an ios user
        launch("b", "u2", "2026-10-01T10:00:00Z"),
        launch("c", "u3"),
        launch("d", "u4", "2026-11-11T10:00:00Z"),  # after D
        launch("e", "u5", success=False),
    ]
    ingest(lake, events)
    document = compute(lake, D)
    assert document["segments"]["os:ios"]["dashboard"]["total_users"] == 2
    assert document["segments"]["all"]["behavior"]["total_users"] == 3


def test_repeat_users_and_visit_count_are_per_segment(lake):
    events = [
        launch("a", "u1", os="ios"),
        launch("b", "u1", os="android"),
        launch("c", "u2"),
        launch("d", "u2"),
    ]
    ingest(lake, events)
    segments = compute(lake, D)["segments"]
    assert segments["all"]["behavior"]["repeat_users"] == 2
    assert segments["os:ios"]["behavior"]["repeat_users"] == 1  # u1 launched once on ios
    assert segments["all"]["behavior"]["visit_count"] == 4
    assert segments["os:ios"]["behavior"]["average_visit_count"] == 1.5


def test_user_duration_sums_session_ends_of_any_launch_and_zero_counts(lake):
    events = [
        launch("a", "u1", session="s1"),
        event("b", "session_end", ON_D, "u1", session="s1", duration_ms=1000),
        event("c", "session_end", ON_D, "u1", session="other", duration_ms=500),  # no launch of its own
        launch("d", "u2"),  # no session_end: duration 0
        launch("e", "u3"),
        event("f", "session_end", ON_D, "u3", duration_ms=4000),
    ]
    behavior = segment(lake, events)["behavior"]
    # durations 1500, 0, 4000 -> median 1500; effectively active: u1, u3
    assert behavior["median_duration_per_user_ms"] == 1500
    assert behavior["effectively_active_users"] == 2


def test_median_of_an_even_count_is_the_mean_of_the_middle_pair_and_of_nothing_null(lake):
    events = [
        launch("a", "u1"),
        event("b", "session_end", ON_D, "u1", duration_ms=1000),
        launch("c", "u2"),
        event("d", "session_end", ON_D, "u2", duration_ms=2001),
        event("e", "entrance_exposure", ON_D, "u9", os="android"),
    ]
    ingest(lake, events)
    segments = compute(lake, D)["segments"]
    assert segments["all"]["behavior"]["median_duration_per_user_ms"] == 1500.5
    assert segments["all"]["behavior"]["median_duration_per_session_ms"] == 1500.5
    assert segments["os:android"]["behavior"]["median_duration_per_user_ms"] is None
    assert segments["os:android"]["behavior"]["median_duration_per_session_ms"] is None


def test_session_median_counts_session_ends_of_users_who_did_not_launch(lake):
    events = [
        launch("a", "u1"),
        event("b", "session_end", ON_D, "u2", duration_ms=3000),
        event("c", "session_end", ON_D, "u3", duration_ms=5000),
    ]
    behavior = segment(lake, events)["behavior"]
    assert behavior["median_duration_per_session_ms"] == 4000
    assert behavior["median_duration_per_user_ms"] == 0


def test_retention_counts_a_return_in_any_segment(lake):
    events = [
        launch("a", "u1", "2026-11-09T10:00:00Z", os="ios"),
        launch("b", "u1", os="android"),  # came back on another os
        launch("c", "u2", "2026-11-09T10:00:00Z", os="ios"),
        launch("d", "u2", "2026-11-10T10:00:00Z", os="ios", success=False),  # a failed launch is no return
        launch("e", "u3", "2026-11-01T10:00:00Z", os="ios"),
        launch("f", "u3", "2026-11-09T10:00:00Z", os="ios"),  # active on 11-09, not new
        launch("g", "u3", os="ios"),
        event("h", "entrance_exposure", ON_D, "u9", os="ios"),
    ]
    retention = segment(lake, events, "os:ios")["retention"]
    assert retention["new"]["d1"] == {
        "cohort_date": "2026-11-09",
        "cohort_size": 2,
        "retained": 1,
        "rate": 0.5,
    }
    assert retention["active"]["d1"] == {
        "cohort_date": "2026-11-09",
        "cohort_size": 3,
        "retained": 2,
        "rate": 2 / 3,
    }
    assert retention["new"]["d7"] == {
        "cohort_date": "2026-11-03",
        "cohort_size": 0,
        "retained": 0,
        "rate": None,
    }


def test_retention_d30_and_d14_use_their_cohort_dates(lake):
    events = [
        launch("a", "u1", "2026-10-11T10:00:00Z"),
        launch("b", "u2", "2026-10-27T10:00:00Z"),
        launch("c", "u1"),
    ]
    retention = segment(lake, events)["retention"]["new"]
    assert retention["d30"] == {"cohort_date": "2026-10-11", "cohort_size": 1, "retained": 1, "rate": 1.0}
    assert retention["d14"] == {"cohort_date": "2026-10-27", "cohort_size": 1, "retained": 0, "rate": 0.0}


def test_profile_and_device_use_the_latest_launch_in_the_segment(lake):
    events = [
        launch("a", "u1", "2026-11-10T08:00:00Z", os="ios", gender="f", device_brand="apple"),
        launch("b", "u1", "2026-11-10T09:00:00Z", os="android", region="GB", device_brand="xiaomi"),
        launch("c", "u1", "2026-11-10T07:00:00Z", os="ios", gender="m", device_brand="apple"),
    ]
    ingest(lake, events)
    segments = compute(lake, D)["segments"]
    # overall the latest is the android launch at 09:00 (no gender: "unknown")
    assert segments["all"]["profile"]["active"] == {
        "gender": {"unknown": 1},
        "age_group": {"unknown": 1},
        "region": {"GB": 1},
    }
    assert segments["all"]["device"]["active"]["brand"] == {"xiaomi": 1}
    # within ios the latest is 08:00
    assert segments["os:ios"]["profile"]["active"]["gender"] == {"f": 1}
    assert segments["os:ios"]["profile"]["new"]["region"] == {"US": 1}


def test_entry_points_count_a_user_under_each_and_average_sessions_through_them(lake):
    events = [
        launch("a", "u1", session="s1", entry_point="feed"),
        launch("b", "u1", session="s2", entry_point="search"),
        launch("c", "u2", session="s3", entry_point="feed", os="android"),
        event("d", "session_end", ON_D, "u1", session="s1", duration_ms=1000),
        event("e", "session_end", ON_D, "u1", session="s2", duration_ms=3000),
        event("f", "session_end", ON_D, "u2", session="s3", duration_ms=2000, os="android"),
        event("g", "session_end", ON_D, "u2", session="unrelated", duration_ms=99999, os="android"),
    ]
    ingest(lake, events)
    segments = compute(lake, D)["segments"]
    assert segments["all"]["entry_points"] == {
        "feed": {
            "active_users": 2,
            "new_users": 2,
            "launch_sessions": 2,
            "average_duration_per_session_ms": 1500.0,
        },
        "search": {
            "active_users": 1,
            "new_users": 1,
            "launch_sessions": 1,
            "average_duration_per_session_ms": 3000.0,
        },
    }
    assert segments["os:android"]["entry_points"]["feed"]["average_duration_per_session_ms"] == 2000.0


def test_funnel_counts_page_views_and_rates_may_exceed_one(lake):
    events = [
        event("a", "entrance_exposure", ON_D, "u1"),
        event("b", "entrance_click", ON_D, "u1"),
        event("c", "entrance_click", ON_D, "u1"),
        event("d", "minis_visit", ON_D, "u1"),
        recharge("e", "u1", "o1", 1.99),
        redeem("f", "u1", "r1", "ep-1"),
    ]
    funnel = segment(lake, events)["funnel"]
    assert [stage["stage"] for stage in funnel["recharge"]][-1] == "recharge_order"
    assert [stage["stage"] for stage in funnel["redeem"]][-1] == "redeem_order"
    click = funnel["recharge"][1]
    assert (click["pv"], click["rate_from_previous"], click["rate_from_first"]) == (2, 2.0, 2.0)
    assert funnel["recharge"][0]["rate_from_previous"] is None
    assert funnel["recharge"][8]["pv"] == 1 and funnel["redeem"][8]["pv"] == 1


def test_paying_and_repeat_paying_users_are_rated_against_active_users(lake):
    events = [
        launch("a", "u1"),
        launch("b", "u2"),
        recharge("c", "u1", "o1", 1.0),
        recharge("d", "u1", "o2", 2.0),
        recharge("e", "u3", "o3", 3.0),  # pays without launching: paying, not active
    ]
    users = segment(lake, events)["iap_users"]
    assert users["paying_users"] == 2
    assert users["paying_user_rate"] == 1.0
    assert users["repeat_paying_users"] == 1
    assert users["repeat_paying_user_rate"] == 0.5
    assert users["arppu"] == 3.0


def test_rates_with_no_active_users_are_null(lake):
    users = segment(lake, [recharge("a", "u1", "o1", 1.0)])["iap_users"]
    assert users["paying_user_rate"] is None and users["repeat_paying_user_rate"] is None


def test_gmv_is_exact_and_rounded_once(lake):
    events = [recharge(f"e{n}", "u1", f"o{n}", 0.105) for n in range(3)]  # 0.315 exactly -> 0.32
    orders = segment(lake, events)["iap_orders"]["all"]
    assert orders["gmv"] == 0.32
    assert orders["average_gmv"] == 0.11  # 0.105 -> 0.11 (half up, from the exact value)


def test_a_duplicated_order_counts_once_and_the_earliest_copy_stands(lake):
    events = [
        recharge("a", "u1", "o1", 5.0, "2026-11-09T23:59:00Z"),
        recharge("b", "u1", "o1", 5.0, "2026-11-10T00:01:00Z"),  # the same order sent again on D
        recharge("c", "u1", "o2", 2.0),
        recharge("d", "u1", "o2", 2.0),  # and an exact resend on D
        redeem("e", "u1", "o1", "ep-1"),  # same order_id but another order type: its own order
    ]
    orders = segment(lake, events)["iap_orders"]["all"]
    assert orders["recharge_orders"] == 1
    assert orders["gmv"] == 2.0
    assert orders["redeem_orders"] == 1


def test_the_same_event_id_counts_once(lake):
    events = [
        launch("a", "u1"),
        launch("a", "u1"),
        recharge("b", "u1", "o1", 1.0),
        recharge("b", "u1", "o1", 1.0),
    ]
    metrics = segment(lake, events)
    assert metrics["behavior"]["visit_count"] == 1
    assert metrics["iap_orders"]["all"]["gmv"] == 1.0


def test_top_redeemed_products_keeps_ten_with_ties_by_product_id(lake):
    events = [redeem(f"x{n}", "u1", f"r{n}", f"p{n:02d}") for n in range(12)]
    events += [
        redeem("y1", "u1", "ra", "p11"),
        redeem("y2", "u1", "rb", "p11"),
        redeem("y3", "u1", "rc", "p05"),
    ]
    top = segment(lake, events)["iap_orders"]["all"]["top_redeemed_products"]
    assert top[:2] == [{"product_id": "p11", "orders": 3}, {"product_id": "p05", "orders": 2}]
    assert [item["product_id"] for item in top[2:]] == [
        "p00",
        "p01",
        "p02",
        "p03",
        "p04",
        "p06",
        "p07",
        "p08",
    ]


def test_new_and_returning_payers_and_a_never_payer_in_all_only(lake):
    events = [
        recharge("a", "u1", "o1", 1.0, "2026-11-01T10:00:00Z"),
        recharge("b", "u1", "o2", 2.0),  # returning
        redeem("c", "u1", "r1", "ep-1"),
        recharge("d", "u2", "o3", 4.0),  # new
        redeem("e", "u3", "r2", "ep-2"),  # never recharged
        recharge("f", "u3", "o4", 8.0, "2026-11-11T10:00:00Z"),  # after D: u3 has not recharged up to D
    ]
    orders = segment(lake, events)["iap_orders"]
    assert (orders["returning_payers"]["gmv"], orders["returning_payers"]["redeem_orders"]) == (2.0, 1)
    assert (orders["new_payers"]["gmv"], orders["new_payers"]["redeem_orders"]) == (4.0, 0)
    assert (orders["all"]["gmv"], orders["all"]["redeem_orders"]) == (6.0, 2)


def test_ltv_counts_revenue_of_the_cohort_from_c_to_d_in_any_segment(lake):
    events = [
        launch("a", "u1", "2026-11-03T10:00:00Z", os="ios"),
        launch("b", "u2", "2026-11-03T10:00:00Z", os="ios"),
        recharge("c", "u1", "o1", 1.5, "2026-11-03T11:00:00Z", os="android"),  # another segment: still counts
        recharge("d", "u1", "o2", 2.0, "2026-11-02T11:00:00Z"),  # before C: does not count
        recharge("e", "u2", "o3", 3.0, os="android"),
        recharge("f", "u2", "o4", 9.0, "2026-11-11T10:00:00Z"),  # after D: does not count
        event("g", "entrance_exposure", ON_D, "u9", os="ios"),
    ]
    ltv = segment(lake, events, "os:ios")["iap_users"]["ltv"]
    assert ltv["d7"] == {"cohort_date": "2026-11-03", "cohort_size": 2, "revenue": 4.5, "value": 2.25}
    assert ltv["d0"] == {"cohort_date": "2026-11-10", "cohort_size": 0, "revenue": 0.0, "value": None}


def test_average_launch_speed_uses_successful_launches_that_carry_it(lake):
    events = [
        launch("a", "u1", launch_ms=1000),
        launch("b", "u1"),
        launch("c", "u2", launch_ms=9000, success=False),
        launch("d", "u3", launch_ms=0),
    ]
    performance = segment(lake, events)["performance"]
    assert performance["average_launch_ms"] == 500.0
    assert performance["loading_success_rate"] == 0.75


def test_segments_come_from_known_events_only(lake):
    events = [
        launch("a", "u1", success=False, os="harmonyos", region="DE"),
        event("b", "session_end", ON_D, "u2", os="android", region="BR", duration_ms=5),
        event("c", "custom_event", ON_D, "u3", os="windows", region="FR"),
    ]
    ingest(lake, events)
    segments = compute(lake, D)["segments"]
    assert set(segments) == {"all", "os:harmonyos", "os:android", "region:DE", "region:BR"}


def test_a_day_in_a_timezone_with_a_half_hour_offset(lake):
    app = AppConfig("app", timezone="Asia/Kolkata")  # UTC+05:30
    events = [
        launch("a", "u1", "2026-11-09T18:29:59Z"),  # 23:59:59 on 11-09 in Kolkata
        launch("b", "u2", "2026-11-09T18:30:00Z"),  # 00:00 on 11-10
        launch("c", "u3", "2026-11-10T18:29:59.999Z"),  # 23:59:59.999 on 11-10
        launch("d", "u4", "2026-11-10T18:30:00Z"),  # 00:00 on 11-11
    ]
    ingest(lake, events, app)
    document = compute(lake, D, app)
    assert document["timezone"] == "Asia/Kolkata"
    assert document["segments"]["all"]["dashboard"]["active_users"] == 2
    assert document["segments"]["all"]["dashboard"]["total_users"] == 3
    assert document["segments"]["all"]["retention"]["new"]["d1"]["cohort_size"] == 1


def test_a_day_with_a_dst_change_is_25_hours_long(lake):
    app = AppConfig("app", timezone="America/New_York")
    day = date(2026, 11, 1)  # clocks go back at 02:00 EDT: 25 hours, 04:00Z to 05:00Z next day
    events = [
        launch("a", "u1", "2026-11-01T03:59:59Z"),  # 23:59:59 EDT on 10-31
        launch("b", "u2", "2026-11-01T04:00:00Z"),  # 00:00 EDT
        launch("c", "u3", "2026-11-02T04:59:59Z"),  # 23:59:59 EST
        launch("d", "u4", "2026-11-02T05:00:00Z"),  # 00:00 EST on 11-02
    ]
    ingest(lake, events, app)
    dashboard = compute(lake, day, app)["segments"]["all"]["dashboard"]
    assert dashboard["active_users"] == 2


def test_a_resent_page_view_counts_once_in_the_funnel(lake):
    events = [event("a", "entrance_exposure", ON_D, "u1"), event("a", "entrance_exposure", ON_D, "u1")]
    events.append(event("b", "entrance_exposure", ON_D, "u2", os="android"))
    funnel = segment(lake, events)["funnel"]["recharge"]
    assert funnel[0]["pv"] == 2


def test_a_later_copy_of_an_order_names_no_segment(lake):
    events = [
        redeem("a", "u1", "r1", "ep-7", "2026-11-09T21:00:00Z", os="ios", region="GB"),
        redeem("b", "u1", "r1", "ep-7", "2026-11-10T22:00:00Z", os="ios", region="GB"),  # same order, later
        launch("c", "u2", os="android", region="US"),
    ]
    ingest(lake, events)
    segments = compute(lake, D)["segments"]
    assert set(segments) == {"all", "os:android", "region:US"}
    assert segments["all"]["iap_orders"]["all"]["redeem_orders"] == 0


def test_within_one_batch_the_first_copy_of_an_event_id_stands(lake):
    # the same event_id sent twice in one request, the copies differing: the first one counts
    events = [launch("a", "u1", os="ios"), launch("a", "u2", os="android")]
    ingest(lake, events)
    segments = compute(lake, D)["segments"]
    assert set(segments) == {"all", "os:ios", "region:US"}
    assert segments["all"]["dashboard"]["active_users"] == 1
