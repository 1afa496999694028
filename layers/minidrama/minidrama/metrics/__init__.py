"""The daily metrics document (SPEC section 6): computed by DuckDB over the lake.

- ``sql``: every metric, written once as SQL
- ``document``: assembling the document from query results (pure)
- ``engine``: the DuckDB session, day facts (state) and reading the lake
- ``compaction``: one file per hour partition, switched atomically
- ``window``: calendar days in an app's time zone and the hour partitions that cover them
- ``schema``: the JSON Schema of the document, and ``validate_document``
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from minidrama.config import AppConfig
from minidrama.lake import Storage, metrics_key
from minidrama.metrics.compaction import compact_partition
from minidrama.metrics.window import day_window

__all__ = ["compute_days", "compact_days", "document_bytes", "refresh_recent", "RefreshResult"]


def document_bytes(document: dict) -> bytes:
    """The stored form of a document: stable key order, UTF-8, no NaN."""
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False).encode()


def compute_days(storage: Storage, app: AppConfig, days: Iterable[date]) -> list[str]:
    """Compute and write the metrics documents of ``days`` (in date order); returns their keys."""
    # DuckDB is imported only here: readers of documents (the report) don't ship it.
    from minidrama.metrics.engine import MetricsSession

    keys = []
    with MetricsSession.open(storage, app) as session:
        for day in sorted(set(days)):
            document = session.document(day)
            key = metrics_key(app.app_id, day)
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


def refresh_recent(storage: Storage, app: AppConfig, now: datetime, count: int) -> RefreshResult:
    """The scheduled job for one app: compact, then recompute, the last ``count`` days."""
    days = app.complete_days(now, count)
    compacted = compact_days(storage, app, days)
    return RefreshResult(app.app_id, days, compacted, compute_days(storage, app, days))
