"""Assemble a metrics document from the definitions' query results (pure: rows in, a dict out).

The day document (SPEC section 6) and the range document (section 7) have the same envelope but
for ``date`` (a day) versus ``kind``, ``from`` and ``to`` (a range), and the same segment shape
but for the range forms of ``retention`` and ``iap_users.ltv``. Conventions of section 6: rates are
plain float ratios, money is rounded to 2 decimals (half up, from exact decimal sums), a sum over
nothing is ``0.0``, a value whose denominator is 0 is ``None``, breakdown maps leave out values
with zero users.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from minidrama.metrics.definitions import (
    DEFINITIONS,
    SEGMENTS,
    Row,
    SegmentResults,
    group_by_segment,
    segment_order,
)
from minidrama.metrics.period import Period

__all__ = ["SCHEMA_VERSION", "build_document", "QueryResults"]

SCHEMA_VERSION = 1

# The order of keys in a segment's modules that several definitions fill.
_KEY_ORDER = {
    "dashboard": ("total_users", "active_users", "new_users", "median_duration_per_user_ms"),
    "behavior": (
        "total_users",
        "new_users",
        "repeat_users",
        "visit_count",
        "average_visit_count",
        "median_duration_per_user_ms",
        "median_duration_per_session_ms",
        "active_users",
        "effectively_active_users",
    ),
    "iap_users": (
        "paying_users",
        "paying_user_rate",
        "repeat_paying_users",
        "repeat_paying_user_rate",
        "arppu",
        "ltv",
    ),
}
_MODULE_ORDER = (
    "dashboard",
    "behavior",
    "retention",
    "profile",
    "device",
    "entry_points",
    "funnel",
    "iap_users",
    "iap_orders",
    "performance",
)

# (definition name, query name) -> the query's rows
QueryResults = Mapping[tuple[str, str], Sequence[Row]]


def build_document(
    *,
    app_id: str,
    period: Period,
    timezone: str,
    currency: str,
    generated_at: datetime,
    results: QueryResults,
    engine: str = "duckdb",
) -> dict[str, Any]:
    """The document of ``period`` from the results of every definition's queries; a day's
    document records the ``engine`` that ran them ("duckdb" embedded, or "athena")."""
    grouped = {name: group_by_segment(rows) for name, rows in results.items()}
    segments = segment_order(row["segment"] for row in results[(SEGMENTS.name, "main")])
    if period.kind == "day":
        when: dict[str, Any] = {"date": period.first.isoformat()}
        computed_by = {"engine": engine}
    else:
        computed_by = {}
        when = {"kind": "range", "from": period.first.isoformat(), "to": period.last.isoformat()}
    return {
        "schema_version": SCHEMA_VERSION,
        "app_id": app_id,
        **when,
        "timezone": timezone,
        "currency": currency,
        "generated_at": generated_at.isoformat().replace("+00:00", "Z"),
        **computed_by,
        "segments": {segment: _segment(SegmentResults(grouped, segment), period) for segment in segments},
    }


def _segment(results: SegmentResults, period: Period) -> dict[str, Any]:
    modules: dict[str, Any] = {}
    for definition in DEFINITIONS:
        for module, value in definition.fill(results, period).items():
            if module in _KEY_ORDER:
                modules.setdefault(module, {}).update(value)
            else:
                modules[module] = value
    for module, keys in _KEY_ORDER.items():
        modules[module] = {key: modules[module][key] for key in keys}
    return {module: modules[module] for module in _MODULE_ORDER}
