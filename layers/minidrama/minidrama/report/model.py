"""The report's content, built from metrics documents: pure values in, a view model out.

The report for day D reads the documents of D and the 30 days before it (a window of 31).
Everything here is computed from those documents alone; a day whose document is missing
stays missing (``None``) all the way to the page, where it reads as "—" or as a gap in a line.

The retention table is assembled across documents: the dN value of cohort C is published in
the document of day C + N, so the table of the last 30 cohorts needs the whole window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from minidrama.metrics.schema import CURRENT_SCHEMA_VERSION
from minidrama.report.format import (
    change_direction,
    format_change,
    format_value,
    is_no_change,
)

__all__ = [
    "WINDOW_DAYS",
    "ReportInputError",
    "MissingMetricsError",
    "MetricRow",
    "ReportView",
    "window_days",
    "build_view",
    "metric_value",
    "segment_label",
    "FUNNEL_STAGE_LABELS",
]

WINDOW_DAYS = 31  # the day itself and the 30 days before it
RETENTION_DAYS = (1, 7, 14, 30)
COHORT_ROWS = 30
TOP_VALUES = 5

FUNNEL_STAGE_LABELS = {
    "entrance_exposure": "Entrance exposure",
    "entrance_click": "Entrance click",
    "minis_visit": "Mini app visit",
    "last_free_episode_watch": "Last free episode watched",
    "third_party_payment_panel_show": "Third-party payment panel shown",
    "third_party_payment_panel_click": "Third-party payment panel click",
    "tiktok_payment_panel_show": "TikTok payment panel shown",
    "tiktok_payment_panel_click": "TikTok payment panel click",
    "recharge_order": "Recharge order",
    "redeem_order": "Redeem order",
}

_OS_LABELS = {"ios": "iOS", "android": "Android", "ipados": "iPadOS", "harmonyos": "HarmonyOS"}


class ReportInputError(ValueError):
    """A metrics document can't be read as the report expects; the message says why."""


class MissingMetricsError(ReportInputError):
    """The metrics document of the report's day does not exist."""


# (path in a segment, label, kind, higher is better)
DASHBOARD_METRICS = [
    ("dashboard.total_users", "Total users", "count", True),
    ("dashboard.active_users", "Active users", "count", True),
    ("dashboard.new_users", "New users", "count", True),
    ("dashboard.median_duration_per_user_ms", "Median time per user", "duration", True),
]
MONETIZATION_METRICS = [
    ("iap_orders.all.gmv", "GMV", "money", True),
    ("iap_users.paying_users", "Paying users", "count", True),
    ("iap_users.paying_user_rate", "Paying user rate", "rate", True),
    ("iap_users.repeat_paying_users", "Repeat paying users", "count", True),
    ("iap_users.repeat_paying_user_rate", "Repeat paying user rate", "rate", True),
    ("iap_users.arppu", "ARPPU", "money", True),
    ("iap_orders.all.average_gmv", "Average GMV per order", "money", True),
    ("iap_orders.all.recharge_orders", "Recharge orders", "count", True),
    ("iap_orders.all.redeem_orders", "Redeem orders", "count", True),
]
BEHAVIOR_METRICS = [
    ("behavior.active_users", "Active users", "count", True),
    ("behavior.new_users", "New users", "count", True),
    ("behavior.repeat_users", "Repeat users (2+ launches)", "count", True),
    ("behavior.effectively_active_users", "Effectively active users", "count", True),
    ("behavior.visit_count", "Visits (launches)", "count", True),
    ("behavior.average_visit_count", "Visits per active user", "decimal", True),
    ("behavior.median_duration_per_user_ms", "Median time per user", "duration", True),
    ("behavior.median_duration_per_session_ms", "Median time per session", "duration", True),
    ("behavior.total_users", "Total users to date", "count", True),
]
PERFORMANCE_METRICS = [
    ("performance.loading_success_rate", "Loading success rate", "rate", True),
    ("performance.average_launch_ms", "Average launch speed", "launch", False),
]
PROFILE_ATTRIBUTES = [
    ("profile", "gender", "Gender"),
    ("profile", "age_group", "Age group"),
    ("profile", "region", "Region"),
    ("device", "brand", "Device brand"),
    ("device", "model", "Device model"),
    ("device", "tiktok_version", "TikTok version"),
]


def window_days(day: date) -> list[date]:
    """The days the report of ``day`` reads, oldest first."""
    return [day - timedelta(days=offset) for offset in range(WINDOW_DAYS - 1, -1, -1)]


def metric_value(segment: Mapping[str, Any] | None, path: str) -> Any:
    """The value at a dotted path of a segment (``iap_users.arppu``); None when the segment is missing."""
    value: Any = segment
    for part in path.split("."):
        if value is None:
            return None
        value = value[part]
    return value


@dataclass(frozen=True)
class MetricRow:
    """One metric of the day with its value the day before and 7 days before."""

    path: str
    label: str
    kind: str
    value: Any
    day_before: Any
    week_before: Any
    higher_is_better: bool
    currency: str

    @property
    def text(self) -> str:
        return format_value(self.value, self.kind, self.currency)

    @property
    def day_before_text(self) -> str:
        return format_value(self.day_before, self.kind, self.currency)

    @property
    def week_before_text(self) -> str:
        return format_value(self.week_before, self.kind, self.currency)

    @property
    def change_day(self) -> str:
        return format_change(self.value, self.day_before, self.kind)

    @property
    def change_week(self) -> str:
        return format_change(self.value, self.week_before, self.kind)

    @property
    def tone_day(self) -> str:
        return self._tone(self.day_before)

    @property
    def tone_week(self) -> str:
        return self._tone(self.week_before)

    def _tone(self, previous: Any) -> str:
        direction = change_direction(self.value, previous)
        if direction in {"none", "flat"} or is_no_change(format_change(self.value, previous, self.kind)):
            return "neutral"
        return "good" if (direction == "up") == self.higher_is_better else "bad"


@dataclass
class ReportView:
    """Everything the template shows, in the order it shows it."""

    app_id: str
    day: date
    timezone: str
    currency: str
    generated_at: str
    days: list[date]
    missing_days: list[date]
    dashboard: list[MetricRow]
    monetization: list[MetricRow]
    ltv: list[dict[str, Any]]
    payer_orders: list[dict[str, Any]]
    top_products: list[dict[str, Any]]
    segments: dict[str, list[dict[str, Any]]]
    behavior: list[MetricRow]
    retention: list[dict[str, Any]]
    attributes: list[dict[str, Any]]
    entry_points: list[dict[str, Any]]
    funnels: dict[str, list[dict[str, Any]]]
    performance: list[MetricRow]
    trends: list[dict[str, Any]]
    gmv_by: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, MetricRow]:
        """The headline metrics by path, for the subject line and the plain-text part."""
        return {row.path: row for row in [*self.dashboard, *self.monetization, *self.performance]}


def build_view(
    app_id: str,
    day: date,
    documents: Mapping[date, Mapping[str, Any] | None],
) -> ReportView:
    """The view model of the report of ``app_id`` for ``day``.

    ``documents`` maps days of :func:`window_days` to their metrics document, or to None where
    the document is missing. The day's own document is required (:class:`MissingMetricsError`).
    """
    today = documents.get(day)
    if today is None:
        raise MissingMetricsError(f"no metrics document for app {app_id!r} on {day.isoformat()}")
    for doc_day, document in documents.items():
        if document is not None:
            _check_document(app_id, doc_day, document)
    days = window_days(day)
    segment_of = {d: _segment(documents.get(d), "all") for d in days}
    current = segment_of[day]
    currency = today["currency"]

    def rows(definitions: list[tuple[str, str, str, bool]]) -> list[MetricRow]:
        return [
            MetricRow(
                path=path,
                label=label,
                kind=kind,
                value=metric_value(current, path),
                day_before=metric_value(segment_of[day - timedelta(days=1)], path),
                week_before=metric_value(segment_of[day - timedelta(days=7)], path),
                higher_is_better=higher_is_better,
                currency=currency,
            )
            for path, label, kind, higher_is_better in definitions
        ]

    segments = _segment_breakdown(today)
    return ReportView(
        app_id=app_id,
        day=day,
        timezone=today["timezone"],
        currency=currency,
        generated_at=today["generated_at"],
        days=days,
        missing_days=[d for d in days if documents.get(d) is None],
        dashboard=rows(DASHBOARD_METRICS),
        monetization=rows(MONETIZATION_METRICS),
        ltv=_ltv(current),
        payer_orders=_payer_orders(current),
        top_products=_top_products(current),
        segments=segments,
        behavior=rows(BEHAVIOR_METRICS),
        retention=_retention_rows(day, documents),
        attributes=_attributes(current),
        entry_points=_entry_points(current),
        funnels={order_type: _funnel(current, order_type) for order_type in ("recharge", "redeem")},
        performance=rows(PERFORMANCE_METRICS),
        trends=_trends(days, segment_of),
        gmv_by={kind: _gmv_shares(entries) for kind, entries in segments.items()},
    )


def _check_document(app_id: str, day: date, document: Mapping[str, Any]) -> None:
    where = f"metrics document of {app_id!r} for {day.isoformat()}"
    version = document.get("schema_version")
    if version != CURRENT_SCHEMA_VERSION:
        raise ReportInputError(
            f"{where} has schema_version {version!r}; this report reads {CURRENT_SCHEMA_VERSION}"
        )
    if document.get("date") != day.isoformat():
        raise ReportInputError(f"{where} says it is for date {document.get('date')!r}")
    if "all" not in document.get("segments", {}):
        raise ReportInputError(f"{where} has no segment 'all'")


def _segment(document: Mapping[str, Any] | None, name: str) -> Mapping[str, Any] | None:
    return None if document is None else document["segments"].get(name)


def _ltv(current: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    ltv = metric_value(current, "iap_users.ltv") or {}
    return [{"key": key, "days": int(key[1:]), **ltv[key]} for key in ("d0", "d7", "d30")]


def _payer_orders(current: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    orders = metric_value(current, "iap_orders")
    return [
        {"key": key, "label": label, **{name: orders[key][name] for name in _ORDER_FIELDS}}
        for key, label in (
            ("all", "All"),
            ("new_payers", "New payers"),
            ("returning_payers", "Returning payers"),
        )
    ]


_ORDER_FIELDS = ("gmv", "average_gmv", "recharge_orders", "redeem_orders")


def _top_products(current: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    orders = metric_value(current, "iap_orders.all")
    redeem_orders = orders["redeem_orders"]
    return [
        {
            "rank": rank,
            "product_id": product["product_id"],
            "orders": product["orders"],
            "share": product["orders"] / redeem_orders if redeem_orders else None,
        }
        for rank, product in enumerate(orders["top_redeemed_products"], start=1)
    ]


def segment_label(name: str) -> str:
    """``os:ios`` → ``iOS``, ``region:US`` → ``US``."""
    kind, _, value = name.partition(":")
    if kind == "os":
        return _OS_LABELS.get(value, value.capitalize() if value else "(none)")
    return value


def _segment_breakdown(document: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per OS and per region: users, payers and GMV of each segment, biggest GMV first."""
    breakdown: dict[str, list[dict[str, Any]]] = {"os": [], "region": []}
    total_gmv = document["segments"]["all"]["iap_orders"]["all"]["gmv"]
    for name, segment in document["segments"].items():
        kind = name.partition(":")[0]
        if kind not in breakdown:
            continue
        gmv = segment["iap_orders"]["all"]["gmv"]
        breakdown[kind].append(
            {
                "segment": name,
                "label": segment_label(name),
                "active_users": segment["dashboard"]["active_users"],
                "new_users": segment["dashboard"]["new_users"],
                "paying_users": segment["iap_users"]["paying_users"],
                "paying_user_rate": segment["iap_users"]["paying_user_rate"],
                "gmv": gmv,
                "gmv_share": gmv / total_gmv if total_gmv else None,
            }
        )
    for entries in breakdown.values():
        entries.sort(key=lambda entry: (-entry["gmv"], -entry["active_users"], entry["label"]))
    return breakdown


def _gmv_shares(entries: list[dict[str, Any]], slices: int = 6) -> list[dict[str, Any]]:
    """Pie slices: the biggest ``slices - 1`` segments by GMV, the rest as "Other"."""
    paying = [entry for entry in entries if entry["gmv"] > 0]
    total = sum(entry["gmv"] for entry in paying)
    if not total:
        return []
    shown = paying if len(paying) <= slices else paying[: slices - 1]
    rest = paying[len(shown) :]
    result = [{"label": entry["label"], "gmv": entry["gmv"]} for entry in shown]
    if rest:
        result.append({"label": f"Other ({len(rest)})", "gmv": round(sum(entry["gmv"] for entry in rest), 2)})
    for entry in result:
        entry["share"] = entry["gmv"] / total
    return result


def _retention_rows(day: date, documents: Mapping[date, Mapping[str, Any] | None]) -> list[dict[str, Any]]:
    """The last 30 cohorts (newest first) × d1/d7/d14/d30, for new and for active users.

    A cell is ``pending`` when C + N is after the report's day (not known yet) and ``missing``
    when the document of C + N is missing; otherwise it carries the published values.
    """
    rows = []
    for offset in range(1, COHORT_ROWS + 1):
        cohort_date = day - timedelta(days=offset)
        row: dict[str, Any] = {"cohort_date": cohort_date}
        for cohort in ("new", "active"):
            size: int | None = None
            cells = {}
            for n in RETENTION_DAYS:
                measured_on = cohort_date + timedelta(days=n)
                if measured_on > day:
                    cells[f"d{n}"] = {"state": "pending", "rate": None}
                    continue
                segment = _segment(documents.get(measured_on), "all")
                if segment is None:
                    cells[f"d{n}"] = {"state": "missing", "rate": None}
                    continue
                published = segment["retention"][cohort][f"d{n}"]
                if published["cohort_date"] != cohort_date.isoformat():
                    raise ReportInputError(
                        f"retention {cohort} d{n} of {measured_on.isoformat()} is for cohort "
                        f"{published['cohort_date']}, expected {cohort_date.isoformat()}"
                    )
                size = published["cohort_size"]
                cells[f"d{n}"] = {"state": "value", **published}
            if size is None:
                # No dN published yet (or all missing): the cohort's own document knows its size.
                own = _segment(documents.get(cohort_date), "all")
                if own is not None:
                    size = (
                        own["dashboard"]["new_users"] if cohort == "new" else own["dashboard"]["active_users"]
                    )
            row[cohort] = {"cohort_size": size, "cells": cells}
        rows.append(row)
    return rows


def _attributes(current: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Top values of each profile / device attribute: active and new users, with the active share."""
    tables = []
    for group, attribute, label in PROFILE_ATTRIBUTES:
        active = metric_value(current, f"{group}.active.{attribute}") or {}
        new = metric_value(current, f"{group}.new.{attribute}") or {}
        total_active = sum(active.values())
        ordered = sorted(
            set(active) | set(new), key=lambda value: (-active.get(value, 0), -new.get(value, 0), value)
        )
        # "Other (1 value)" would hide a value in the space it takes to show it
        cut = TOP_VALUES if len(ordered) > TOP_VALUES + 1 else len(ordered)
        shown, rest = ordered[:cut], ordered[cut:]
        rows = [
            {
                "value": value,
                "active_users": active.get(value, 0),
                "new_users": new.get(value, 0),
                "share": active.get(value, 0) / total_active if total_active else None,
                "other": False,
            }
            for value in shown
        ]
        if rest:
            rest_active = sum(active.get(value, 0) for value in rest)
            rows.append(
                {
                    "value": f"Other ({len(rest)} values)",
                    "active_users": rest_active,
                    "new_users": sum(new.get(value, 0) for value in rest),
                    "share": rest_active / total_active if total_active else None,
                    "other": True,
                }
            )
        tables.append({"group": group, "attribute": attribute, "label": label, "rows": rows})
    return tables


def _entry_points(current: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    entry_points = metric_value(current, "entry_points") or {}
    rows = [{"entry_point": name, **values} for name, values in entry_points.items()]
    rows.sort(key=lambda row: (-row["launch_sessions"], -row["active_users"], row["entry_point"]))
    return rows


def _funnel(current: Mapping[str, Any] | None, order_type: str) -> list[dict[str, Any]]:
    stages = metric_value(current, f"funnel.{order_type}") or []
    return [
        {"step": step, "label": FUNNEL_STAGE_LABELS.get(stage["stage"], stage["stage"]), **stage}
        for step, stage in enumerate(stages, start=1)
    ]


TREND_SERIES = {
    "active_users": "dashboard.active_users",
    "new_users": "dashboard.new_users",
    "paying_users": "iap_users.paying_users",
    "repeat_paying_users": "iap_users.repeat_paying_users",
    "gmv": "iap_orders.all.gmv",
    "arppu": "iap_users.arppu",
    "median_duration_per_user_ms": "dashboard.median_duration_per_user_ms",
    "paying_user_rate": "iap_users.paying_user_rate",
    "loading_success_rate": "performance.loading_success_rate",
}


def _trends(days: list[date], segment_of: Mapping[date, Mapping[str, Any] | None]) -> list[dict[str, Any]]:
    """One row per day of the window; every series is None on a day whose document is missing."""
    return [
        {
            "date": d.isoformat(),
            "missing": segment_of[d] is None,
            **{name: metric_value(segment_of[d], path) for name, path in TREND_SERIES.items()},
        }
        for d in days
    ]
