"""Assemble the daily metrics document from query results (pure: rows in, a dict out).

Conventions of SPEC section 6: rates are plain float ratios (not rounded, not clamped), money is
rounded to 2 decimals (half up, from exact decimal sums), a sum over nothing is ``0.0``, a value
whose denominator is 0 is ``None``, breakdown maps leave out values with zero users.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from minidrama.schema import FUNNEL_PAGE_VIEWS

__all__ = [
    "SCHEMA_VERSION",
    "RETENTION_DAYS",
    "LTV_DAYS",
    "ORDER_TYPES",
    "PAYER_GROUPS",
    "build_document",
    "money",
    "ratio",
]

SCHEMA_VERSION = 1
RETENTION_DAYS = (1, 7, 14, 30)
LTV_DAYS = (0, 7, 30)
ORDER_TYPES = {"recharge": "recharge_order", "redeem": "redeem_order"}
PAYER_GROUPS = ("all", "new_payers", "returning_payers")
PROFILE_ATTRIBUTES = ("gender", "age_group", "region")
DEVICE_ATTRIBUTES = ("brand", "model", "tiktok_version")
_CENT = Decimal("0.01")

Rows = list[dict[str, Any]]


def money(value: Decimal | int | float | None) -> float:
    """A money amount as a JSON number rounded to 2 decimals; a sum over nothing is 0.0."""
    if value is None:
        return 0.0
    return float(Decimal(value).quantize(_CENT, rounding=ROUND_HALF_UP))


def ratio(numerator: float | int | Decimal | None, denominator: float | int | Decimal | None) -> float | None:
    """numerator / denominator as a float, or None when the denominator is 0 (or missing)."""
    if not denominator:
        return None
    return float(numerator or 0) / float(denominator)


def _money_ratio(numerator: Decimal | None, denominator: int | None) -> float | None:
    if not denominator:
        return None
    return money(Decimal(numerator or 0) / Decimal(denominator))


def _by_segment(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    grouped: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["segment"]].append(row)
    return grouped


def _one(grouped: Mapping[str, list[Mapping[str, Any]]], segment: str) -> Mapping[str, Any]:
    rows = grouped.get(segment) or [{}]
    return rows[0]


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _count(value: Any) -> int:
    return int(value or 0)


def segment_order(segments: Iterable[str]) -> list[str]:
    """``all`` first, then ``os:`` and ``region:`` segments, each alphabetical."""

    def key(segment: str) -> tuple[int, str]:
        kind = segment.split(":", 1)[0]
        return ({"all": 0, "os": 1, "region": 2}.get(kind, 3), segment)

    return sorted(set(segments), key=key)


def build_document(
    *,
    app_id: str,
    day: date,
    timezone: str,
    currency: str,
    generated_at: datetime,
    results: Mapping[str, Rows],
) -> dict[str, Any]:
    """The metrics document of ``day`` from the named query results of :mod:`minidrama.metrics.sql`."""
    grouped = {name: _by_segment(rows) for name, rows in results.items() if name != "segments"}
    segments = segment_order(row["segment"] for row in results["segments"])
    return {
        "schema_version": SCHEMA_VERSION,
        "app_id": app_id,
        "date": day.isoformat(),
        "timezone": timezone,
        "currency": currency,
        "generated_at": generated_at.isoformat().replace("+00:00", "Z"),
        "segments": {segment: _segment(grouped, segment, day) for segment in segments},
    }


def _segment(grouped: Mapping[str, Mapping[str, list[Mapping[str, Any]]]], segment: str, day: date) -> dict:
    users = _one(grouped["users"], segment)
    active_users = _count(users.get("active_users"))
    new_users = _count(users.get("new_users"))
    visit_count = _count(users.get("visit_count"))
    total_users = _count(_one(grouped["total_users"], segment).get("total_users"))
    median_per_user = _number(users.get("median_duration_per_user_ms"))
    median_per_session = _number(_one(grouped["sessions"], segment).get("median_duration_per_session_ms"))
    payers = _one(grouped["payers"], segment)
    paying_users = _count(payers.get("paying_users"))
    repeat_paying_users = _count(payers.get("repeat_paying_users"))
    orders = _orders(grouped["orders"].get(segment, []), grouped["top_products"].get(segment, []))
    performance = _one(grouped["performance"], segment)
    gmv = next(
        (row["gmv"] for row in grouped["orders"].get(segment, []) if row["payer_group"] == "all"), None
    )

    return {
        "dashboard": {
            "total_users": total_users,
            "active_users": active_users,
            "new_users": new_users,
            "median_duration_per_user_ms": median_per_user,
        },
        "behavior": {
            "total_users": total_users,
            "new_users": new_users,
            "repeat_users": _count(users.get("repeat_users")),
            "visit_count": visit_count,
            "average_visit_count": ratio(visit_count, active_users),
            "median_duration_per_user_ms": median_per_user,
            "median_duration_per_session_ms": median_per_session,
            "active_users": active_users,
            "effectively_active_users": _count(users.get("effectively_active_users")),
        },
        "retention": _retention(grouped["retention"].get(segment, []), day),
        **_attributes(grouped["attributes"].get(segment, [])),
        "entry_points": _entry_points(grouped["entry_points"].get(segment, [])),
        "funnel": _funnel(grouped["funnel"].get(segment, [])),
        "iap_users": {
            "paying_users": paying_users,
            "paying_user_rate": ratio(paying_users, active_users),
            "repeat_paying_users": repeat_paying_users,
            "repeat_paying_user_rate": ratio(repeat_paying_users, active_users),
            "arppu": _money_ratio(gmv, paying_users),
            "ltv": _ltv(grouped["ltv"].get(segment, []), day),
        },
        "iap_orders": orders,
        "performance": {
            "loading_success_rate": ratio(
                performance.get("successful_launches"), performance.get("launches")
            ),
            "average_launch_ms": ratio(performance.get("launch_ms_total"), performance.get("timed_launches")),
        },
    }


def _cohort_date(day: date, offset: int) -> date:
    return date.fromordinal(day.toordinal() - offset)


def _retention(rows: list[Mapping[str, Any]], day: date) -> dict[str, dict[str, dict[str, Any]]]:
    by_cohort = {row["cohort_date"]: row for row in rows}
    retention: dict[str, dict[str, dict[str, Any]]] = {"new": {}, "active": {}}
    for offset in RETENTION_DAYS:
        cohort_date = _cohort_date(day, offset)
        row = by_cohort.get(cohort_date, {})
        for kind in ("new", "active"):
            size = _count(row.get(f"{kind}_cohort_size"))
            retained = _count(row.get(f"{kind}_retained"))
            retention[kind][f"d{offset}"] = {
                "cohort_date": cohort_date.isoformat(),
                "cohort_size": size,
                "retained": retained,
                "rate": ratio(retained, size),
            }
    return retention


def _ltv(rows: list[Mapping[str, Any]], day: date) -> dict[str, dict[str, Any]]:
    by_cohort = {row["cohort_date"]: row for row in rows}
    ltv = {}
    for offset in LTV_DAYS:
        cohort_date = _cohort_date(day, offset)
        row = by_cohort.get(cohort_date, {})
        size = _count(row.get("cohort_size"))
        revenue = row.get("revenue")
        ltv[f"d{offset}"] = {
            "cohort_date": cohort_date.isoformat(),
            "cohort_size": size,
            "revenue": money(revenue),
            "value": _money_ratio(revenue, size),
        }
    return ltv


def _attributes(rows: list[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, dict[str, int]]]]:
    profile: dict[str, dict[str, dict[str, int]]] = {
        kind: {attribute: {} for attribute in PROFILE_ATTRIBUTES} for kind in ("new", "active")
    }
    device: dict[str, dict[str, dict[str, int]]] = {
        kind: {attribute: {} for attribute in DEVICE_ATTRIBUTES} for kind in ("new", "active")
    }
    for row in sorted(rows, key=lambda row: (row["attribute"], -_count(row["active_users"]), row["value"])):
        target = profile if row["attribute"] in PROFILE_ATTRIBUTES else device
        for kind in ("new", "active"):
            users = _count(row[f"{kind}_users"])
            if users:
                target[kind][row["attribute"]][row["value"]] = users
    return {"profile": profile, "device": device}


def _entry_points(rows: list[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        row["entry_point"]: {
            "active_users": _count(row["active_users"]),
            "new_users": _count(row["new_users"]),
            "launch_sessions": _count(row["launch_sessions"]),
            "average_duration_per_session_ms": _number(row["average_duration_per_session_ms"]),
        }
        for row in sorted(rows, key=lambda row: (-_count(row["launch_sessions"]), row["entry_point"]))
    }


def _funnel(rows: list[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    page_views = {row["stage"]: _count(row["pv"]) for row in rows}
    funnel = {}
    for order_type, order_event in ORDER_TYPES.items():
        stages = [*FUNNEL_PAGE_VIEWS, order_event]
        counts = [page_views.get(stage, 0) for stage in stages]
        funnel[order_type] = [
            {
                "stage": stage,
                "pv": pv,
                "rate_from_previous": None if index == 0 else ratio(pv, counts[index - 1]),
                "rate_from_first": ratio(pv, counts[0]),
            }
            for index, (stage, pv) in enumerate(zip(stages, counts, strict=True))
        ]
    return funnel


def _orders(rows: list[Mapping[str, Any]], top_rows: list[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    by_group = {row["payer_group"]: row for row in rows}
    top: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in top_rows:
        top[row["payer_group"]].append(row)
    orders = {}
    for group in PAYER_GROUPS:
        row = by_group.get(group, {})
        gmv = row.get("gmv")
        recharge_orders = _count(row.get("recharge_orders"))
        orders[group] = {
            "gmv": money(gmv),
            "average_gmv": _money_ratio(gmv, recharge_orders),
            "recharge_orders": recharge_orders,
            "redeem_orders": _count(row.get("redeem_orders")),
            "top_redeemed_products": [
                {"product_id": item["product_id"], "orders": _count(item["orders"])}
                for item in sorted(top[group], key=lambda item: item["position"])
            ],
        }
    return orders
