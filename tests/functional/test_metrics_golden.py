"""A small event set whose every metric was worked out by hand (the working is in the comments).

Day D = 2026-11-10, app in UTC. History: D-7 = 11-03, D-1 = 11-09.

  u1 ios/US      first launch 11-09 (feed); recharge o0 1.99 on 11-09 (so a returning payer on D)
                 on D: launch L1 08:00 feed s10 launch_ms 1000 (male, apple iPhone15, 33.1)
                       launch L2 20:00 search s11 no launch_ms (male, apple iPhone16, 33.2)
                       session_end s10 60000, session_end s11 30000
                       recharge o1 4.99, recharge o2 9.99, o2 again 5 min later (new event_id)
  u2 android/GB  first launch on D: L3 11:00 feed s20 launch_ms 1200 (female, 18-24, samsung),
                       L3 sent twice (same event_id); session_end s20 120000
                       recharge o3 0.99 (first recharge ever: a new payer); redeem r1 ep-2
  u3 android/US  first launch 11-03; on D only a failed launch (launch_ms 5000) and session_end 5000
  u4 ios/GB      first launch 11-09; on D only redeem r2 ep-1 (never recharged: counts in `all` only)
  u5 windows/FR  a custom event only: creates no segment
  page views on D: entrance_exposure u1 x2, u2 x2; entrance_click u1, u2; minis_visit u2
"""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.metrics_support import compute, event, ingest

D = date(2026, 11, 10)


def _events() -> list[dict[str, Any]]:
    ios_us = {"os": "ios", "region": "US"}
    android_gb = {"os": "android", "region": "GB"}
    android_us = {"os": "android", "region": "US"}
    ios_gb = {"os": "ios", "region": "GB"}
    return [
        # history
        event(
            "h1", "app_launch", "2026-11-03T09:00:00Z", "u3", session="s30", entry_point="feed", **android_us
        ),
        event("h2", "app_launch", "2026-11-09T09:00:00Z", "u1", session="s1", entry_point="feed", **ios_us),
        event("h3", "app_launch", "2026-11-09T10:00:00Z", "u4", session="s40", entry_point="feed", **ios_gb),
        event(
            "h4",
            "recharge_order",
            "2026-11-09T09:10:00Z",
            "u1",
            order_id="o0",
            amount=1.99,
            currency="USD",
            **ios_us,
        ),
        # u1 on D
        event(
            "e1",
            "app_launch",
            "2026-11-10T08:00:00Z",
            "u1",
            session="s10",
            entry_point="feed",
            launch_ms=1000,
            gender="male",
            device_brand="apple",
            device_model="iPhone15",
            tiktok_version="33.1",
            **ios_us,
        ),
        event(
            "e2",
            "app_launch",
            "2026-11-10T20:00:00Z",
            "u1",
            session="s11",
            entry_point="search",
            gender="male",
            device_brand="apple",
            device_model="iPhone16",
            tiktok_version="33.2",
            **ios_us,
        ),
        event("e3", "session_end", "2026-11-10T08:30:00Z", "u1", session="s10", duration_ms=60000, **ios_us),
        event("e4", "session_end", "2026-11-10T20:10:00Z", "u1", session="s11", duration_ms=30000, **ios_us),
        event(
            "e5",
            "recharge_order",
            "2026-11-10T09:00:00Z",
            "u1",
            order_id="o1",
            amount=4.99,
            currency="USD",
            product_id="beans_100",
            **ios_us,
        ),
        event(
            "e6",
            "recharge_order",
            "2026-11-10T21:00:00Z",
            "u1",
            order_id="o2",
            amount=9.99,
            currency="USD",
            **ios_us,
        ),
        event(
            "e7",
            "recharge_order",
            "2026-11-10T21:05:00Z",
            "u1",
            order_id="o2",
            amount=9.99,
            currency="USD",
            **ios_us,
        ),
        # u2 on D (e8 sent twice)
        event(
            "e8",
            "app_launch",
            "2026-11-10T11:00:00Z",
            "u2",
            session="s20",
            entry_point="feed",
            launch_ms=1200,
            gender="female",
            age_group="18-24",
            device_brand="samsung",
            **android_gb,
        ),
        event(
            "e8",
            "app_launch",
            "2026-11-10T11:00:00Z",
            "u2",
            session="s20",
            entry_point="feed",
            launch_ms=1200,
            gender="female",
            age_group="18-24",
            device_brand="samsung",
            **android_gb,
        ),
        event(
            "e9", "session_end", "2026-11-10T11:30:00Z", "u2", session="s20", duration_ms=120000, **android_gb
        ),
        event(
            "e10",
            "recharge_order",
            "2026-11-10T11:05:00Z",
            "u2",
            order_id="o3",
            amount=0.99,
            currency="USD",
            **android_gb,
        ),
        event(
            "e11",
            "redeem_order",
            "2026-11-10T11:10:00Z",
            "u2",
            order_id="r1",
            product_id="ep-2",
            beans=50,
            **android_gb,
        ),
        # u3 on D: failed launch only
        event(
            "e12",
            "app_launch",
            "2026-11-10T12:00:00Z",
            "u3",
            session="s31",
            entry_point="feed",
            success=False,
            launch_ms=5000,
            **android_us,
        ),
        event(
            "e13", "session_end", "2026-11-10T12:01:00Z", "u3", session="s31", duration_ms=5000, **android_us
        ),
        # u4 on D: a redeem, never recharged
        event(
            "e14",
            "redeem_order",
            "2026-11-10T13:00:00Z",
            "u4",
            order_id="r2",
            product_id="ep-1",
            beans=30,
            **ios_gb,
        ),
        # u5: custom event only
        event("e15", "custom_thing", "2026-11-10T14:00:00Z", "u5", os="windows", region="FR"),
        # page views
        event("p1", "entrance_exposure", "2026-11-10T07:00:00Z", "u1", **ios_us),
        event("p2", "entrance_exposure", "2026-11-10T07:01:00Z", "u1", **ios_us),
        event("p3", "entrance_exposure", "2026-11-10T10:00:00Z", "u2", **android_gb),
        event("p4", "entrance_exposure", "2026-11-10T10:01:00Z", "u2", **android_gb),
        event("p5", "entrance_click", "2026-11-10T07:02:00Z", "u1", **ios_us),
        event("p6", "entrance_click", "2026-11-10T10:02:00Z", "u2", **android_gb),
        event("p7", "minis_visit", "2026-11-10T10:03:00Z", "u2", **android_gb),
    ]


STAGES = [
    "entrance_exposure",
    "entrance_click",
    "minis_visit",
    "last_free_episode_watch",
    "third_party_payment_panel_show",
    "third_party_payment_panel_click",
    "tiktok_payment_panel_show",
    "tiktok_payment_panel_click",
]


def funnel(order_stage: str, rows: list[tuple[int, float | None, float | None]]) -> list[dict[str, Any]]:
    return [
        {"stage": stage, "pv": pv, "rate_from_previous": previous, "rate_from_first": first}
        for stage, (pv, previous, first) in zip([*STAGES, order_stage], rows, strict=True)
    ]


def cohort(day: str, size: int, retained: int, rate: float | None) -> dict[str, Any]:
    return {"cohort_date": day, "cohort_size": size, "retained": retained, "rate": rate}


def ltv(day: str, size: int, revenue: float, value: float | None) -> dict[str, Any]:
    return {"cohort_date": day, "cohort_size": size, "revenue": revenue, "value": value}


def orders(gmv: float, average: float | None, recharge: int, redeem: int, top: list[tuple[str, int]]) -> dict:
    return {
        "gmv": gmv,
        "average_gmv": average,
        "recharge_orders": recharge,
        "redeem_orders": redeem,
        "top_redeemed_products": [{"product_id": p, "orders": n} for p, n in top],
    }


NO_ORDERS = orders(0.0, None, 0, 0, [])
EMPTY_BREAKDOWN = {"gender": {}, "age_group": {}, "region": {}}
EMPTY_DEVICE = {"brand": {}, "model": {}, "tiktok_version": {}}
ZERO_TAIL = [(0, None, 0.0)] * 4  # payment-panel stages nobody reached: 0/0 from previous is null


EXPECTED_ALL = {
    # active: u1, u2; new: u2; total: u1..u4 (u3 on 11-03, u4 on 11-09; u5 never launched)
    "dashboard": {
        "total_users": 4,
        "active_users": 2,
        "new_users": 1,
        "median_duration_per_user_ms": 105000.0,
    },
    "behavior": {
        "total_users": 4,
        "new_users": 1,
        "repeat_users": 1,  # u1 launched twice
        "visit_count": 3,  # L1, L2, L3 (the failed launch and the resent L3 don't count)
        "average_visit_count": 1.5,
        "median_duration_per_user_ms": 105000.0,  # u1 90000, u2 120000
        "median_duration_per_session_ms": 45000.0,  # 5000, 30000 | 60000, 120000 -> (30000+60000)/2
        "active_users": 2,
        "effectively_active_users": 2,
    },
    "retention": {
        # d1 cohort 11-09: new u1, u4 (both first launched then); u1 came back
        "new": {
            "d1": cohort("2026-11-09", 2, 1, 0.5),
            "d7": cohort("2026-11-03", 1, 0, 0.0),  # u3: only a failed launch on D
            "d14": cohort("2026-10-27", 0, 0, None),
            "d30": cohort("2026-10-11", 0, 0, None),
        },
        "active": {
            "d1": cohort("2026-11-09", 2, 1, 0.5),
            "d7": cohort("2026-11-03", 1, 0, 0.0),
            "d14": cohort("2026-10-27", 0, 0, None),
            "d30": cohort("2026-10-11", 0, 0, None),
        },
    },
    "profile": {
        "new": {"gender": {"female": 1}, "age_group": {"18-24": 1}, "region": {"GB": 1}},
        # u1's latest launch on D is L2 (20:00)
        "active": {
            "gender": {"female": 1, "male": 1},
            "age_group": {"18-24": 1, "unknown": 1},
            "region": {"GB": 1, "US": 1},
        },
    },
    "device": {
        "new": {"brand": {"samsung": 1}, "model": {"unknown": 1}, "tiktok_version": {"unknown": 1}},
        "active": {
            "brand": {"apple": 1, "samsung": 1},
            "model": {"iPhone16": 1, "unknown": 1},
            "tiktok_version": {"33.2": 1, "unknown": 1},
        },
    },
    "entry_points": {
        # feed: L1 (u1, s10 -> 60000) and L3 (u2, s20 -> 120000)
        "feed": {
            "active_users": 2,
            "new_users": 1,
            "launch_sessions": 2,
            "average_duration_per_session_ms": 90000.0,
        },
        "search": {
            "active_users": 1,
            "new_users": 0,
            "launch_sessions": 1,
            "average_duration_per_session_ms": 30000.0,
        },
    },
    "funnel": {
        # exposure 4, click 2, minis 1, then nothing; recharge orders o1, o2, o3; redeem orders r1, r2
        "recharge": funnel(
            "recharge_order",
            [(4, None, 1.0), (2, 0.5, 0.5), (1, 0.5, 0.25), (0, 0.0, 0.0), *ZERO_TAIL, (3, None, 0.75)],
        ),
        "redeem": funnel(
            "redeem_order",
            [(4, None, 1.0), (2, 0.5, 0.5), (1, 0.5, 0.25), (0, 0.0, 0.0), *ZERO_TAIL, (2, None, 0.5)],
        ),
    },
    "iap_users": {
        "paying_users": 2,  # u1 (o1, o2), u2 (o3)
        "paying_user_rate": 1.0,
        "repeat_paying_users": 1,
        "repeat_paying_user_rate": 0.5,
        "arppu": 7.99,  # 15.97 / 2 = 7.985 -> 7.99
        "ltv": {
            "d0": ltv("2026-11-10", 1, 0.99, 0.99),  # u2, o3
            "d7": ltv("2026-11-03", 1, 0.0, 0.0),  # u3 never paid
            "d30": ltv("2026-10-11", 0, 0.0, None),
        },
    },
    "iap_orders": {
        # GMV 4.99 + 9.99 + 0.99 = 15.97 over 3 orders = 5.3233 -> 5.32; the o2 copy counts once
        "all": orders(15.97, 5.32, 3, 2, [("ep-1", 1), ("ep-2", 1)]),
        "new_payers": orders(0.99, 0.99, 1, 1, [("ep-2", 1)]),  # u2
        "returning_payers": orders(14.98, 7.49, 2, 0, []),  # u1 (o0 on 11-09)
    },
    # 3 successful of 4 launches; launch_ms of successful launches: 1000, 1200
    "performance": {"loading_success_rate": 0.75, "average_launch_ms": 1100.0},
}

EXPECTED_IOS = {
    "dashboard": {
        "total_users": 2,
        "active_users": 1,
        "new_users": 0,
        "median_duration_per_user_ms": 90000.0,
    },
    "behavior": {
        "total_users": 2,  # u1, u4
        "new_users": 0,
        "repeat_users": 1,
        "visit_count": 2,
        "average_visit_count": 2.0,
        "median_duration_per_user_ms": 90000.0,
        "median_duration_per_session_ms": 45000.0,  # 30000, 60000
        "active_users": 1,
        "effectively_active_users": 1,
    },
    "retention": {
        "new": {
            "d1": cohort("2026-11-09", 2, 1, 0.5),
            "d7": cohort("2026-11-03", 0, 0, None),
            "d14": cohort("2026-10-27", 0, 0, None),
            "d30": cohort("2026-10-11", 0, 0, None),
        },
        "active": {
            "d1": cohort("2026-11-09", 2, 1, 0.5),
            "d7": cohort("2026-11-03", 0, 0, None),
            "d14": cohort("2026-10-27", 0, 0, None),
            "d30": cohort("2026-10-11", 0, 0, None),
        },
    },
    "profile": {
        "new": EMPTY_BREAKDOWN,
        "active": {"gender": {"male": 1}, "age_group": {"unknown": 1}, "region": {"US": 1}},
    },
    "device": {
        "new": EMPTY_DEVICE,
        "active": {"brand": {"apple": 1}, "model": {"iPhone16": 1}, "tiktok_version": {"33.2": 1}},
    },
    "entry_points": {
        "feed": {
            "active_users": 1,
            "new_users": 0,
            "launch_sessions": 1,
            "average_duration_per_session_ms": 60000.0,
        },
        "search": {
            "active_users": 1,
            "new_users": 0,
            "launch_sessions": 1,
            "average_duration_per_session_ms": 30000.0,
        },
    },
    "funnel": {
        "recharge": funnel(
            "recharge_order",
            [(2, None, 1.0), (1, 0.5, 0.5), (0, 0.0, 0.0), (0, None, 0.0), *ZERO_TAIL, (2, None, 1.0)],
        ),
        "redeem": funnel(
            "redeem_order",
            [(2, None, 1.0), (1, 0.5, 0.5), (0, 0.0, 0.0), (0, None, 0.0), *ZERO_TAIL, (1, None, 0.5)],
        ),
    },
    "iap_users": {
        "paying_users": 1,
        "paying_user_rate": 1.0,
        "repeat_paying_users": 1,
        "repeat_paying_user_rate": 1.0,
        "arppu": 14.98,
        "ltv": {
            "d0": ltv("2026-11-10", 0, 0.0, None),
            "d7": ltv("2026-11-03", 0, 0.0, None),
            "d30": ltv("2026-10-11", 0, 0.0, None),
        },
    },
    "iap_orders": {
        "all": orders(14.98, 7.49, 2, 1, [("ep-1", 1)]),  # r2 by u4 (ios) counts here only
        "new_payers": NO_ORDERS,
        "returning_payers": orders(14.98, 7.49, 2, 0, []),
    },
    "performance": {"loading_success_rate": 1.0, "average_launch_ms": 1000.0},
}

EXPECTED_ANDROID = {
    "dashboard": {
        "total_users": 2,
        "active_users": 1,
        "new_users": 1,
        "median_duration_per_user_ms": 120000.0,
    },
    "behavior": {
        "total_users": 2,  # u3 (11-03), u2
        "new_users": 1,
        "repeat_users": 0,
        "visit_count": 1,
        "average_visit_count": 1.0,
        "median_duration_per_user_ms": 120000.0,  # u3 is not active: its session is not a user duration
        "median_duration_per_session_ms": 62500.0,  # 5000, 120000
        "active_users": 1,
        "effectively_active_users": 1,
    },
    "retention": {
        "new": {
            "d1": cohort("2026-11-09", 0, 0, None),
            "d7": cohort("2026-11-03", 1, 0, 0.0),
            "d14": cohort("2026-10-27", 0, 0, None),
            "d30": cohort("2026-10-11", 0, 0, None),
        },
        "active": {
            "d1": cohort("2026-11-09", 0, 0, None),
            "d7": cohort("2026-11-03", 1, 0, 0.0),
            "d14": cohort("2026-10-27", 0, 0, None),
            "d30": cohort("2026-10-11", 0, 0, None),
        },
    },
    "profile": {
        "new": {"gender": {"female": 1}, "age_group": {"18-24": 1}, "region": {"GB": 1}},
        "active": {"gender": {"female": 1}, "age_group": {"18-24": 1}, "region": {"GB": 1}},
    },
    "device": {
        "new": {"brand": {"samsung": 1}, "model": {"unknown": 1}, "tiktok_version": {"unknown": 1}},
        "active": {"brand": {"samsung": 1}, "model": {"unknown": 1}, "tiktok_version": {"unknown": 1}},
    },
    "entry_points": {
        "feed": {
            "active_users": 1,
            "new_users": 1,
            "launch_sessions": 1,
            "average_duration_per_session_ms": 120000.0,
        },
    },
    "funnel": {
        "recharge": funnel(
            "recharge_order",
            [(2, None, 1.0), (1, 0.5, 0.5), (1, 1.0, 0.5), (0, 0.0, 0.0), *ZERO_TAIL, (1, None, 0.5)],
        ),
        "redeem": funnel(
            "redeem_order",
            [(2, None, 1.0), (1, 0.5, 0.5), (1, 1.0, 0.5), (0, 0.0, 0.0), *ZERO_TAIL, (1, None, 0.5)],
        ),
    },
    "iap_users": {
        "paying_users": 1,
        "paying_user_rate": 1.0,
        "repeat_paying_users": 0,
        "repeat_paying_user_rate": 0.0,
        "arppu": 0.99,
        "ltv": {
            "d0": ltv("2026-11-10", 1, 0.99, 0.99),
            "d7": ltv("2026-11-03", 1, 0.0, 0.0),
            "d30": ltv("2026-10-11", 0, 0.0, None),
        },
    },
    "iap_orders": {
        "all": orders(0.99, 0.99, 1, 1, [("ep-2", 1)]),
        "new_payers": orders(0.99, 0.99, 1, 1, [("ep-2", 1)]),
        "returning_payers": NO_ORDERS,
    },
    "performance": {"loading_success_rate": 0.5, "average_launch_ms": 1200.0},
}

EXPECTED_GB = {
    "dashboard": {
        "total_users": 2,
        "active_users": 1,
        "new_users": 1,
        "median_duration_per_user_ms": 120000.0,
    },
    "behavior": {
        "total_users": 2,  # u4 (11-09), u2
        "new_users": 1,
        "repeat_users": 0,
        "visit_count": 1,
        "average_visit_count": 1.0,
        "median_duration_per_user_ms": 120000.0,
        "median_duration_per_session_ms": 120000.0,
        "active_users": 1,
        "effectively_active_users": 1,
    },
    "retention": {
        "new": {
            "d1": cohort("2026-11-09", 1, 0, 0.0),  # u4 did not come back
            "d7": cohort("2026-11-03", 0, 0, None),
            "d14": cohort("2026-10-27", 0, 0, None),
            "d30": cohort("2026-10-11", 0, 0, None),
        },
        "active": {
            "d1": cohort("2026-11-09", 1, 0, 0.0),
            "d7": cohort("2026-11-03", 0, 0, None),
            "d14": cohort("2026-10-27", 0, 0, None),
            "d30": cohort("2026-10-11", 0, 0, None),
        },
    },
    "profile": EXPECTED_ANDROID["profile"],
    "device": EXPECTED_ANDROID["device"],
    "entry_points": EXPECTED_ANDROID["entry_points"],
    "funnel": {
        "recharge": EXPECTED_ANDROID["funnel"]["recharge"],
        "redeem": funnel(
            "redeem_order",
            [(2, None, 1.0), (1, 0.5, 0.5), (1, 1.0, 0.5), (0, 0.0, 0.0), *ZERO_TAIL, (2, None, 1.0)],
        ),
    },
    "iap_users": {
        "paying_users": 1,
        "paying_user_rate": 1.0,
        "repeat_paying_users": 0,
        "repeat_paying_user_rate": 0.0,
        "arppu": 0.99,
        "ltv": {
            "d0": ltv("2026-11-10", 1, 0.99, 0.99),
            "d7": ltv("2026-11-03", 0, 0.0, None),
            "d30": ltv("2026-10-11", 0, 0.0, None),
        },
    },
    "iap_orders": {
        "all": orders(0.99, 0.99, 1, 2, [("ep-1", 1), ("ep-2", 1)]),
        "new_payers": orders(0.99, 0.99, 1, 1, [("ep-2", 1)]),
        "returning_payers": NO_ORDERS,
    },
    "performance": {"loading_success_rate": 1.0, "average_launch_ms": 1200.0},
}

EXPECTED_US = {
    "dashboard": {
        "total_users": 2,
        "active_users": 1,
        "new_users": 0,
        "median_duration_per_user_ms": 90000.0,
    },
    "behavior": {
        "total_users": 2,  # u1, u3
        "new_users": 0,
        "repeat_users": 1,
        "visit_count": 2,
        "average_visit_count": 2.0,
        "median_duration_per_user_ms": 90000.0,
        "median_duration_per_session_ms": 30000.0,  # 5000, 30000, 60000
        "active_users": 1,
        "effectively_active_users": 1,
    },
    "retention": {
        "new": {
            "d1": cohort("2026-11-09", 1, 1, 1.0),
            "d7": cohort("2026-11-03", 1, 0, 0.0),
            "d14": cohort("2026-10-27", 0, 0, None),
            "d30": cohort("2026-10-11", 0, 0, None),
        },
        "active": {
            "d1": cohort("2026-11-09", 1, 1, 1.0),
            "d7": cohort("2026-11-03", 1, 0, 0.0),
            "d14": cohort("2026-10-27", 0, 0, None),
            "d30": cohort("2026-10-11", 0, 0, None),
        },
    },
    "profile": EXPECTED_IOS["profile"],
    "device": EXPECTED_IOS["device"],
    "entry_points": EXPECTED_IOS["entry_points"],
    "funnel": {
        "recharge": EXPECTED_IOS["funnel"]["recharge"],
        "redeem": funnel(
            "redeem_order",
            [(2, None, 1.0), (1, 0.5, 0.5), (0, 0.0, 0.0), (0, None, 0.0), *ZERO_TAIL, (0, None, 0.0)],
        ),
    },
    "iap_users": {
        "paying_users": 1,
        "paying_user_rate": 1.0,
        "repeat_paying_users": 1,
        "repeat_paying_user_rate": 1.0,
        "arppu": 14.98,
        "ltv": {
            "d0": ltv("2026-11-10", 0, 0.0, None),
            "d7": ltv("2026-11-03", 1, 0.0, 0.0),
            "d30": ltv("2026-10-11", 0, 0.0, None),
        },
    },
    "iap_orders": {
        "all": orders(14.98, 7.49, 2, 0, []),
        "new_payers": NO_ORDERS,
        "returning_payers": orders(14.98, 7.49, 2, 0, []),
    },
    "performance": {"loading_success_rate": 2 / 3, "average_launch_ms": 1000.0},
}


def test_golden_document_matches_the_hand_computed_values(lake):
    # GIVEN the hand-worked event set in the lake
    ingest(lake, _events())

    # WHEN day D is computed
    document = compute(lake, D)

    # THEN the header and every metric of every segment match the working above
    assert document["schema_version"] == 1
    assert (document["app_id"], document["date"], document["timezone"], document["currency"]) == (
        "app",
        "2026-11-10",
        "UTC",
        "USD",
    )
    assert list(document["segments"]) == ["all", "os:android", "os:ios", "region:GB", "region:US"]
    expected = {
        "all": EXPECTED_ALL,
        "os:android": EXPECTED_ANDROID,
        "os:ios": EXPECTED_IOS,
        "region:GB": EXPECTED_GB,
        "region:US": EXPECTED_US,
    }
    for segment, metrics in expected.items():
        for section, values in metrics.items():
            assert document["segments"][segment][section] == values, f"{segment} {section}"
