"""Realistic metrics documents (SPEC section 6) for report tests, without the metrics engine.

Numbers come from a seeded generator that depends only on (app, day, segment), so the document
of day D and the document of day D + N agree about cohort C = D: the retention dN of D + N
names the cohort size that D published as its new / active users, as the real engine does.

Every key of section 6 is present; a value whose denominator is 0 is ``None``; money is rounded
to 2 decimals. ``region:FR`` is a segment that saw only a failed launch, so it holds the
all-null shape of a segment without active users.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any

from minidrama.lake import Storage, metrics_key
from minidrama.schema import FUNNEL_PAGE_VIEWS

__all__ = [
    "metrics_document",
    "range_document",
    "write_history",
    "parse",
    "lookup",
    "SEGMENT_SHARES",
    "FUNNEL_STAGES",
]

SEGMENT_SHARES = {
    "all": 1.0,
    "os:android": 0.58,
    "os:ios": 0.42,
    "region:US": 0.38,
    "region:PH": 0.24,
    "region:ID": 0.18,
    "region:GB": 0.12,
    "region:BR": 0.08,
    "region:FR": 0.0,  # only a failed launch: a segment with no active users
}
FUNNEL_STAGES = {
    "recharge": [*FUNNEL_PAGE_VIEWS, "recharge_order"],
    "redeem": [*FUNNEL_PAGE_VIEWS, "redeem_order"],
}
ENTRY_POINTS = ["for_you_feed", "search", "profile_link", "share_card", "push"]


def _rng(app_id: str, day: date, segment: str, what: str) -> random.Random:
    seed = hashlib.sha256(f"{app_id}|{day.isoformat()}|{segment}|{what}".encode()).hexdigest()
    return random.Random(int(seed[:16], 16))


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _split(total: int, weights: dict[str, float], rng: random.Random) -> dict[str, int]:
    """``total`` users spread over values by weight; values with zero users left out (SPEC)."""
    jittered = {name: weight * rng.uniform(0.8, 1.2) for name, weight in weights.items()}
    scale = sum(jittered.values())
    counts = {name: int(total * weight / scale) for name, weight in jittered.items()}
    leftover = total - sum(counts.values())
    for name in sorted(jittered, key=jittered.__getitem__, reverse=True)[:leftover]:
        counts[name] += 1
    return {name: count for name, count in counts.items() if count}


def _active_and_new(app_id: str, day: date, segment: str, scale: int) -> tuple[int, int]:
    share = SEGMENT_SHARES.get(segment, 0.1)
    rng = _rng(app_id, day, "all", "users")
    weekly = 1.0 + 0.15 * (day.weekday() >= 5)
    growth = 1.0 + 0.01 * (day.toordinal() % 60)
    active = round(scale * weekly * growth * rng.uniform(0.9, 1.1) * share)
    new = round(active * rng.uniform(0.18, 0.3))
    return active, new


def _money(value: float) -> float:
    return round(value + 0.0, 2)


def _segment(app_id: str, day: date, segment: str, scale: int, quiet: bool) -> dict[str, Any]:
    rng = _rng(app_id, day, segment, "segment")
    active, new = _active_and_new(app_id, day, segment, scale)
    total = active * 6 + round(scale * SEGMENT_SHARES.get(segment, 0.1) * (day.toordinal() % 100))
    repeat = round(active * rng.uniform(0.2, 0.35))
    visits = active + repeat + round(repeat * rng.uniform(0.2, 0.6))
    effective = round(active * rng.uniform(0.7, 0.9))
    sessions = round(visits * rng.uniform(0.8, 0.95))
    median_user = round(rng.uniform(120_000, 480_000)) if active else None
    median_session = round(rng.uniform(60_000, 240_000)) if sessions else None

    paying = 0 if quiet else round(active * rng.uniform(0.03, 0.07))
    repeat_paying = round(paying * rng.uniform(0.1, 0.3))
    recharge_orders = paying + repeat_paying + round(repeat_paying * rng.uniform(0, 0.5))
    gmv = _money(sum(rng.choice([0.99, 1.99, 4.99, 9.99, 19.99]) for _ in range(recharge_orders)))
    redeem_orders = round(active * rng.uniform(0.1, 0.2)) if active else 0
    new_payers = round(paying * rng.uniform(0.2, 0.4))
    new_share = _ratio(new_payers, paying) or 0.0
    new_recharge = round(recharge_orders * new_share)
    new_gmv = _money(gmv * new_share)
    new_redeem = round(redeem_orders * new_share * 0.8)
    products = {}
    remaining = redeem_orders
    for index in range(14):
        if remaining <= 0:
            break
        count = max(1, round(remaining * rng.uniform(0.15, 0.35)))
        count = min(count, remaining)
        products[f"ep-{100 + index:04d}"] = products.get(f"ep-{100 + index:04d}", 0) + count
        remaining -= count
    top = sorted(products.items(), key=lambda item: (-item[1], item[0]))[:10]

    def orders(order_gmv: float, recharge: int, redeem: int, share: float) -> dict[str, Any]:
        return {
            "gmv": order_gmv,
            "average_gmv": _money(order_gmv / recharge) if recharge else None,
            "recharge_orders": recharge,
            "redeem_orders": redeem,
            "top_redeemed_products": [
                {"product_id": product, "orders": round(count * share)}
                for product, count in top
                if round(count * share) > 0
            ],
        }

    exposure = round(active * rng.uniform(3, 5))
    page_views = [exposure]
    for _ in FUNNEL_PAGE_VIEWS[1:]:
        page_views.append(round(page_views[-1] * rng.uniform(0.35, 0.9)))

    def funnel(last: int) -> list[dict[str, Any]]:
        pvs = [*page_views, last]
        stages = FUNNEL_STAGES["recharge" if last == recharge_orders else "redeem"]
        return [
            {
                "stage": stage,
                "pv": pv,
                "rate_from_previous": None if index == 0 else _ratio(pv, pvs[index - 1]),
                "rate_from_first": _ratio(pv, pvs[0]),
            }
            for index, (stage, pv) in enumerate(zip(stages, pvs, strict=True))
        ]

    recharge_funnel, redeem_funnel = funnel(recharge_orders), funnel(redeem_orders)
    redeem_funnel[-1]["stage"] = "redeem_order"

    def retention(cohort: str) -> dict[str, Any]:
        result = {}
        for n in (1, 7, 14, 30):
            cohort_date = day - timedelta(days=n)
            cohort_active, cohort_new = _active_and_new(app_id, cohort_date, segment, scale)
            size = cohort_new if cohort == "new" else cohort_active
            keep = {1: 0.42, 7: 0.21, 14: 0.15, 30: 0.09}[n] * (1.3 if cohort == "active" else 1.0)
            retained = round(size * keep * rng.uniform(0.85, 1.15))
            result[f"d{n}"] = {
                "cohort_date": cohort_date.isoformat(),
                "cohort_size": size,
                "retained": retained,
                "rate": _ratio(retained, size),
            }
        return result

    def ltv() -> dict[str, Any]:
        result = {}
        for n in (0, 7, 30):
            cohort_date = day - timedelta(days=n)
            size = _active_and_new(app_id, cohort_date, segment, scale)[1]
            revenue = _money(size * rng.uniform(0.05, 0.12) * (1 + n / 10)) if size else 0.0
            result[f"d{n}"] = {
                "cohort_date": cohort_date.isoformat(),
                "cohort_size": size,
                "revenue": revenue,
                "value": _ratio(revenue, size),
            }
        return result

    def attributes(users: int, weights: dict[str, dict[str, float]]) -> dict[str, dict[str, int]]:
        return {name: _split(users, values, rng) for name, values in weights.items()}

    region_value = segment.partition(":")[2] if segment.startswith("region:") else None
    regions = (
        {region_value: 1.0} if region_value else {"US": 0.38, "PH": 0.24, "ID": 0.18, "GB": 0.12, "BR": 0.08}
    )
    profile_weights = {
        "gender": {"female": 0.62, "male": 0.33, "unknown": 0.05},
        "age_group": {"18-24": 0.31, "25-34": 0.36, "35-44": 0.19, "45+": 0.09, "unknown": 0.05},
        "region": regions,
    }
    device_weights = {
        "brand": {
            "Apple": 0.42,
            "Samsung": 0.2,
            "Xiaomi": 0.12,
            "OPPO": 0.09,
            "vivo": 0.08,
            "Google": 0.05,
            "unknown": 0.04,
        },
        "model": {
            "iPhone 15": 0.16,
            "iPhone 14": 0.14,
            "iPhone 13": 0.12,
            "Galaxy S23": 0.08,
            "Galaxy A54": 0.07,
            "Redmi Note 12": 0.07,
            "Pixel 8": 0.04,
            "unknown": 0.32,
        },
        "tiktok_version": {"37.2.0": 0.45, "37.1.3": 0.3, "36.9.1": 0.15, "unknown": 0.1},
    }
    entry_counts = _split(
        active,
        {"for_you_feed": 0.55, "search": 0.2, "profile_link": 0.12, "share_card": 0.08, "push": 0.05},
        rng,
    )
    launches_ok = visits
    launches_all = (
        launches_ok + round(launches_ok * rng.uniform(0.005, 0.03)) + (1 if segment == "region:FR" else 0)
    )
    return {
        "dashboard": {
            "total_users": total,
            "active_users": active,
            "new_users": new,
            "median_duration_per_user_ms": median_user,
        },
        "behavior": {
            "total_users": total,
            "new_users": new,
            "repeat_users": repeat,
            "visit_count": visits,
            "average_visit_count": _ratio(visits, active),
            "median_duration_per_user_ms": median_user,
            "median_duration_per_session_ms": median_session,
            "active_users": active,
            "effectively_active_users": effective,
        },
        "retention": {"new": retention("new"), "active": retention("active")},
        "profile": {"new": attributes(new, profile_weights), "active": attributes(active, profile_weights)},
        "device": {"new": attributes(new, device_weights), "active": attributes(active, device_weights)},
        "entry_points": {
            name: {
                "active_users": users,
                "new_users": round(users * rng.uniform(0.15, 0.3)),
                "launch_sessions": round(users * rng.uniform(1.1, 1.6)),
                "average_duration_per_session_ms": round(rng.uniform(50_000, 300_000)),
            }
            for name, users in entry_counts.items()
        },
        "funnel": {"recharge": recharge_funnel, "redeem": redeem_funnel},
        "iap_users": {
            "paying_users": paying,
            "paying_user_rate": _ratio(paying, active),
            "repeat_paying_users": repeat_paying,
            "repeat_paying_user_rate": _ratio(repeat_paying, active),
            "arppu": _money(gmv / paying) if paying else None,
            "ltv": ltv(),
        },
        "iap_orders": {
            "all": orders(gmv, recharge_orders, redeem_orders, 1.0),
            "new_payers": orders(new_gmv, new_recharge, new_redeem, new_share * 0.8),
            "returning_payers": orders(
                _money(gmv - new_gmv),
                recharge_orders - new_recharge,
                redeem_orders - new_redeem - 5 if redeem_orders > new_redeem + 5 else 0,
                0.7,
            ),
        },
        "performance": {
            "loading_success_rate": _ratio(launches_ok, launches_all),
            "average_launch_ms": round(rng.uniform(700, 1600), 1) if launches_ok else None,
        },
    }


def metrics_document(
    app_id: str,
    day: date,
    *,
    scale: int = 2000,
    timezone: str = "UTC",
    currency: str = "USD",
    quiet: bool = False,
    segments: list[str] | None = None,
) -> dict[str, Any]:
    """A SPEC section 6 document for ``day``; ``quiet=True`` makes a day without any payer."""
    names = segments or list(SEGMENT_SHARES)
    return {
        "schema_version": 1,
        "app_id": app_id,
        "date": day.isoformat(),
        "timezone": timezone,
        "currency": currency,
        "generated_at": f"{(day + timedelta(days=1)).isoformat()}T02:15:00Z",
        "segments": {name: _segment(app_id, day, name, scale, quiet) for name in names},
    }


def write_history(
    storage: Storage,
    app_id: str,
    last_day: date,
    days: int = 35,
    *,
    missing: set[date] | frozenset[date] = frozenset(),
    **options: Any,
) -> dict[date, dict[str, Any]]:
    """Write the documents of ``days`` days ending on ``last_day`` (except ``missing``) into the lake."""
    written = {}
    for offset in range(days):
        day = last_day - timedelta(days=offset)
        if day in missing:
            continue
        document = metrics_document(app_id, day, **options)
        storage.put_bytes(metrics_key(app_id, day), json.dumps(document).encode(), "application/json")
        written[day] = document
    return written


def range_document(app_id: str, first: date, last: date, **options: Any) -> dict[str, Any]:
    """A document in the shape of SPEC section 7 for ``first`` … ``last``, for report tests: the
    last day's numbers, with retention and LTV in their range forms (a cohort row per day, dN
    null where C + N is after ``last``, totals over the known rows). Its values stand in for
    the engine's; only its shape is the spec's."""
    document = metrics_document(app_id, last, **options)
    del document["date"]
    document.update({"kind": "range", "from": first.isoformat(), "to": last.isoformat()})
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    for name, segment in document["segments"].items():
        for cohort in ("new", "active"):
            rows = []
            for day in days:
                active, new = _active_and_new(app_id, day, name, options.get("scale", 2000))
                size = new if cohort == "new" else active
                row: dict[str, Any] = {"cohort_date": day.isoformat(), "cohort_size": size}
                for n, keep in ((1, 0.42), (7, 0.21), (14, 0.15), (30, 0.09)):
                    retained = round(size * keep)
                    known = day + timedelta(days=n) <= last
                    row[f"d{n}"] = {"retained": retained, "rate": _ratio(retained, size)} if known else None
                rows.append(row)
            totals = {}
            for n in (1, 7, 14, 30):
                known = [row for row in rows if row[f"d{n}"] is not None]
                size = sum(row["cohort_size"] for row in known)
                retained = sum(row[f"d{n}"]["retained"] for row in known)
                totals[f"d{n}"] = {"cohort_size": size, "retained": retained, "rate": _ratio(retained, size)}
            segment["retention"][cohort] = {"cohorts": rows, **totals}
        ltv = segment["iap_users"]["ltv"]
        segment["iap_users"]["ltv"] = {
            "range": {key: value for key, value in ltv["d30"].items() if key != "cohort_date"},
            **{
                n: {key: value for key, value in ltv[n].items() if key != "cohort_date"}
                for n in ("d0", "d7", "d30")
            },
        }
    return document


# --- reading a rendered report back -----------------------------------------------------------


class _Cells(HTMLParser):
    """Collects every element with data-metric, its attributes and its text; sections; images."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.cells: list[dict[str, Any]] = []
        self.sections: list[str] = []
        self.images: list[dict[str, str]] = []
        self._open: dict[str, Any] | None = None

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if tag == "section":
            self.sections.append(attributes.get("id", ""))
        if tag == "img":
            self.images.append(attributes)
        if "data-metric" in attributes:
            self._open = {**attributes, "text": ""}

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag):
        if self._open is not None and tag == "td":
            self._open["text"] = self._open["text"].strip()
            self.cells.append(self._open)
            self._open = None


def parse(html: str) -> _Cells:
    parser = _Cells()
    parser.feed(html)
    return parser


def lookup(segment: dict[str, Any], metric: str) -> Any:
    """A dotted path into a segment; map keys may themselves hold dots (``37.2.0``)."""
    parts = metric.split(".")
    if parts[0] in {"profile", "device"}:
        parts = metric.split(".", 3)
    elif parts[0] == "entry_points":
        head, _, rest = metric.partition(".")
        name, _, field = rest.rpartition(".")
        parts = [head, name, field]
    value: Any = segment
    for part in parts:
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def checked_cells(
    html: str, document_of: Callable[[str], dict[str, Any] | None], currency: str = "USD"
) -> int:
    """Assert that every number cell of a report page shows the value of its document (the one
    ``document_of`` returns for its ``data-date``), formatted; a cell whose document is missing
    must read "—". Returns how many cells held a value."""
    from minidrama.report.format import format_value

    checked = 0
    for cell in parse(html).cells:
        document = document_of(cell["data-date"])
        if document is None:
            assert cell["text"] == "—", cell
            continue
        expected = lookup(document["segments"][cell["data-segment"]], cell["data-metric"])
        assert json.loads(cell["data-value"]) == expected, cell
        assert cell["text"] == format_value(expected, cell["data-kind"], currency), cell
        checked += 1
    return checked
