"""Metrics documents: the day (SPEC section 6) and any range of days (section 7), by DuckDB.

- ``definitions``: every metric, defined once (its SQL and the document keys it fills)
- ``period``: what a document covers (a day, a range, a week, a month) and its parameters
- ``document``: assembling a document from the definitions' results (pure)
- ``facts``: the stored facts, public Parquet tables written for every computed day, and their index
- ``engine``: the DuckDB session computing days: reading events, the engine's state, writing facts
- ``athena``: the Athena engine, for days too large for one Lambda: its plan and its assembly
- ``ranges``: range documents from the stored facts
- ``tabular``: documents and daily series as CSV
- ``sql``: reading a day's events and the engine's state as SQL
- ``compaction``: one file per hour partition, switched atomically
- ``window``: calendar days in an app's time zone and the hour partitions that cover them
- ``schema``: the JSON Schema of the document, and ``validate_document``
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from minidrama.config import AppConfig
from minidrama.lake import NotFoundError, Storage, metrics_key, month_metrics_key, week_metrics_key
from minidrama.metrics.compaction import compact_partition
from minidrama.metrics.exceptions import MissingDays
from minidrama.metrics.facts import FactsIndex
from minidrama.metrics.period import CalendarPeriod, calendar_periods, days_of, range_days
from minidrama.metrics.schema import read_document
from minidrama.metrics.window import day_window

__all__ = [
    "compute_days",
    "compact_days",
    "document_bytes",
    "query_range",
    "daily_documents",
    "write_calendar_documents",
    "refresh_recent",
    "RefreshResult",
    "AthenaRoute",
]


def document_bytes(document: dict) -> bytes:
    """The stored form of a document: stable key order, UTF-8, no NaN."""
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False).encode()


@dataclass
class AthenaRoute:
    """Where the days too large for the embedded engine go: a day whose events files hold more
    than ``threshold_bytes`` (0: none) is not computed here; ``start(app, day)`` starts its run on
    the Athena engine (the state machine, which writes the day when its queries are done) and
    returns the run's id. ``started`` lists the runs started, as (app_id, day, id)."""

    threshold_bytes: int
    start: Callable[[AppConfig, date], str]
    started: list[tuple[str, date, str]] = field(default_factory=list)

    def route(self, storage: Storage, app: AppConfig, days: Iterable[date]) -> list[date]:
        """Start the runs of the large ``days``; the days left for the embedded engine."""
        from minidrama.metrics.athena import day_event_bytes

        embedded = []
        for day in sorted(set(days)):
            if self.threshold_bytes and day_event_bytes(storage, app, day) > self.threshold_bytes:
                self.started.append((app.app_id, day, self.start(app, day)))
            else:
                embedded.append(day)
        return embedded


def compute_days(
    storage: Storage,
    app: AppConfig,
    days: Iterable[date],
    now: datetime | None = None,
    on_day: Callable[[date], None] | None = None,
    athena: AthenaRoute | None = None,
) -> list[str]:
    """Compute and write the metrics documents of ``days`` (in date order), then the week and
    month documents that contain them where those are complete (by ``now``) and every day of
    them is computed; returns the keys written. ``on_day`` hears of each day written (progress).
    With ``athena``, the days it takes are left to the Athena engine's runs (their documents,
    and the week and month documents containing them, are written when a run assembles)."""
    # DuckDB is imported only here: readers of documents (the report) don't ship it.
    from minidrama.metrics.engine import MetricsSession

    keys = []
    computed = sorted(set(days)) if athena is None else athena.route(storage, app, days)
    with MetricsSession.open(storage, app) as session:
        for day in computed:
            document = session.document(day)
            key = metrics_key(app.app_id, day)
            storage.put_bytes(key, document_bytes(document), "application/json")
            keys.append(key)
            if on_day is not None:
                on_day(day)
        session.refresh_spans()
    return keys + write_calendar_documents(storage, app, computed, now or datetime.now(UTC))


def query_range(
    storage: Storage,
    app: AppConfig,
    first: date,
    last: date,
    segments: Sequence[str] | None = None,
    generated_at: datetime | None = None,
) -> dict[str, Any]:
    """The range document of [first, last] from the stored facts (see :mod:`minidrama.metrics.ranges`)."""
    from minidrama.metrics import ranges

    return ranges.query_range(storage, app, first, last, segments, generated_at)


def daily_documents(storage: Storage, app: AppConfig, first: date, last: date) -> dict[date, dict[str, Any]]:
    """The stored daily documents of [first, last]; every day must have been computed."""
    documents: dict[date, dict[str, Any]] = {}
    missing = []
    for day in range_days(first, last):
        try:
            documents[day] = read_document(storage.get_bytes(metrics_key(app.app_id, day)))
        except NotFoundError:
            missing.append(day)
    if missing:
        raise MissingDays(app.app_id, missing)
    return documents


def _calendar_key(app: AppConfig, period: CalendarPeriod) -> str:
    if period.kind == "week":
        return week_metrics_key(app.app_id, period.label)
    return month_metrics_key(app.app_id, period.label)


def complete_calendar_periods(app: AppConfig, days: Iterable[date], now: datetime) -> list[CalendarPeriod]:
    """The weeks and months containing any of ``days`` that have ended in the app's time zone."""
    today = now.astimezone(app.zone).date()
    return [period for period in calendar_periods(sorted(set(days))) if period.last < today]


def write_calendar_documents(
    storage: Storage, app: AppConfig, days: Iterable[date], now: datetime
) -> list[str]:
    """(Re)write the week and month documents containing ``days`` that are complete and fully computed."""
    index = FactsIndex.load(storage, app.app_id, app.timezone)
    keys = []
    for period in complete_calendar_periods(app, days, now):
        if not all(day in index.days for day in days_of(period.first, period.last)):
            continue
        document = query_range(storage, app, period.first, period.last, generated_at=now)
        key = _calendar_key(app, period)
        storage.put_bytes(key, document_bytes(document), "application/json")
        keys.append(key)
    return keys


def compact_days(storage: Storage, app: AppConfig, days: Iterable[date]) -> int:
    """Compact every hour partition covering ``days``; returns how many partitions were rewritten."""
    hours = {hour for day in days for hour in day_window(day, app.timezone).hours}
    return sum(compact_partition(storage, app.app_id, utc_date, hour) for utc_date, hour in sorted(hours))


@dataclass(frozen=True)
class RefreshResult:
    app_id: str
    days: list[date]
    compacted_partitions: int
    documents: list[str]

    def summary(self) -> dict[str, object]:
        return {
            "app_id": self.app_id,
            "days": [day.isoformat() for day in self.days],
            "compacted_partitions": self.compacted_partitions,
            "documents": self.documents,
        }


def refresh_recent(
    storage: Storage, app: AppConfig, now: datetime, count: int, athena: AthenaRoute | None = None
) -> RefreshResult:
    """The scheduled job for one app: compact, then recompute, the last ``count`` days (the large
    ones on the Athena engine, with ``athena``).

    A week or month that has ended gets its document: days of it never computed before (before
    the app's first events, say) are computed with it.
    """
    days = app.complete_days(now, count)
    compacted = compact_days(storage, app, days)
    index = FactsIndex.load(storage, app.app_id, app.timezone)
    never_computed = {
        day
        for period in complete_calendar_periods(app, days, now)
        for day in days_of(period.first, period.last)
        if day not in index.days and day not in days
    }
    documents = compute_days(storage, app, [*days, *never_computed], now, athena=athena)
    return RefreshResult(app.app_id, days, compacted, documents)
