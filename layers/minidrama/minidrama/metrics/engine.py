"""Run the metric SQL with DuckDB over the lake, keeping a day's cost proportional to that day.

State: *day facts*. For every calendar day C (app time zone) that has events, the engine keeps two
small Parquet files under ``state/app_id={app}/day_facts/dt=C/``:

- ``launches-*.parquet``: successful launches per (user, os, region) on C;
- ``orders-*.parquet``: C's orders, the earliest copy of each ``order_id`` per order event name.

Everything "ever" (first launch, first recharge, total users, cohorts for retention and LTV,
order de-duplication across days) is computed from the facts of all days up to D plus D's own
events, so one day's cost is D's events plus one small row per user-day of history.

Each day's facts carry a fingerprint of the event files they were built from (keys and versions
of the hour partitions covering that day, and the time zone); ``state/.../day_facts/index.json``
maps days to fingerprints. Whenever a day's files change (late events, compaction) its facts are
rebuilt from its events before use. So computing days in any order, recomputing, or computing
after late events arrive gives the same documents as one clean pass.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from minidrama.config import AppConfig
from minidrama.lake import LocalStorage, NotFoundError, ObjectInfo, Storage, state_prefix
from minidrama.metrics import sql
from minidrama.metrics.compaction import event_files_by_partition
from minidrama.metrics.document import LTV_DAYS, RETENTION_DAYS, build_document
from minidrama.metrics.window import day_window, days_with_data

__all__ = ["MetricsSession", "connect"]

FACTS_VERSION = 1
LAMBDA_MB_PER_VCPU = 1769

_LAUNCH_FACT_TYPES = "day DATE, user_id VARCHAR, os VARCHAR, region VARCHAR, launches BIGINT"
_ORDER_FACT_TYPES = (
    "day DATE, event_name VARCHAR, order_id VARCHAR, event_id VARCHAR, event_time TIMESTAMP WITH TIME ZONE,"
    " user_id VARCHAR, os VARCHAR, region VARCHAR, amount DECIMAL(38, 6), product_id VARCHAR"
)


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB sized to where it runs (a Lambda's memory and vCPUs, or the machine)."""
    config: dict[str, Any] = {"home_directory": tempfile.gettempdir()}
    lambda_memory_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "0"))
    if lambda_memory_mb:
        # Lambda gives one vCPU per 1,769 MB; leave a quarter of the memory to Python and buffers.
        config["threads"] = max(1, min(6, math.ceil(lambda_memory_mb / LAMBDA_MB_PER_VCPU)))
        config["memory_limit"] = f"{int(lambda_memory_mb * 0.75)}MB"
        config["temp_directory"] = str(Path(tempfile.gettempdir()) / "duckdb-spill")
    connection = duckdb.connect(config=config)
    connection.execute("SET TimeZone = 'UTC'")
    return connection


def _rows(connection: duckdb.DuckDBPyConnection, query: str) -> list[dict[str, Any]]:
    cursor = connection.execute(query)
    columns = [description[0] for description in cursor.description]
    return [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


@dataclass
class _FactsEntry:
    fingerprint: str
    launches: str
    orders: str


@dataclass
class MetricsSession:
    """Computes documents for one app; lists the lake once and reuses day facts across days."""

    storage: Storage
    app: AppConfig
    workdir: Path
    partitions: dict[tuple[date, int], list[ObjectInfo]] = field(default_factory=dict)
    facts: dict[date, _FactsEntry] = field(default_factory=dict)
    _index_dirty: bool = False

    @classmethod
    @contextmanager
    def open(cls, storage: Storage, app: AppConfig) -> Iterator[MetricsSession]:
        workdir = Path(tempfile.mkdtemp(prefix="minidrama-metrics-"))
        try:
            session = cls(storage, app, workdir)
            session.partitions = event_files_by_partition(storage, app.app_id)
            session.facts = session._load_index()
            yield session
            session.save_index()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    # --- the document -------------------------------------------------------------------------

    def document(self, day: date, generated_at: datetime | None = None) -> dict[str, Any]:
        """The metrics document of ``day`` (SPEC section 6)."""
        history_days = sorted(d for d in days_with_data(self.partitions, self.app.timezone) if d < day)
        for history_day in history_days:
            self._ensure_facts(history_day)
        connection = connect()
        try:
            self._load_day_events(connection, day)
            self._store_facts(connection, day)
            self._load_history(connection, [*history_days, day])
            for statement in sql.PREPARE_SQL:
                connection.execute(statement)
            retention_cohorts = [day - timedelta(days=offset) for offset in RETENTION_DAYS]
            ltv_cohorts = [day - timedelta(days=offset) for offset in LTV_DAYS]
            queries = sql.metric_queries(day, retention_cohorts, ltv_cohorts)
            results = {name: _rows(connection, query) for name, query in queries.items()}
        finally:
            connection.close()
        return build_document(
            app_id=self.app.app_id,
            day=day,
            timezone=self.app.timezone,
            currency=self.app.currency,
            generated_at=generated_at or datetime.now(UTC),
            results=results,
        )

    # --- events of one day --------------------------------------------------------------------

    def day_files(self, day: date) -> list[ObjectInfo]:
        window = day_window(day, self.app.timezone)
        return [info for hour in window.hours for info in self.partitions.get(hour, [])]

    def _fingerprint(self, day: date) -> str:
        digest = hashlib.sha256(f"v{FACTS_VERSION}|{self.app.timezone}|{day.isoformat()}".encode())
        for info in self.day_files(day):
            digest.update(f"|{info.key}:{info.version}".encode())
        return digest.hexdigest()

    def _local(self, key: str) -> Path:
        if isinstance(self.storage, LocalStorage):
            return self.storage.path(key)
        target = self.workdir / "lake" / key
        if not target.exists():
            self.storage.local_copy(key, self.workdir / "lake")
        return target

    def _load_day_events(self, connection: duckdb.DuckDBPyConnection, day: date) -> None:
        window = day_window(day, self.app.timezone)
        paths = [str(self._local(info.key)) for info in self.day_files(day)]
        source = sql.read_events(paths)
        connection.execute(
            "CREATE OR REPLACE TEMP TABLE day_events AS "
            + sql.day_events_sql(source, window.start, window.end)
        )

    # --- day facts ----------------------------------------------------------------------------

    def _facts_key(self, day: date, kind: str, fingerprint: str) -> str:
        return (
            f"{state_prefix(self.app.app_id)}day_facts/dt={day.isoformat()}/{kind}-{fingerprint[:20]}.parquet"
        )

    def _ensure_facts(self, day: date) -> None:
        entry = self.facts.get(day)
        if entry and entry.fingerprint == self._fingerprint(day):
            return
        connection = connect()
        try:
            self._load_day_events(connection, day)
            self._store_facts(connection, day)
        finally:
            connection.close()

    def _store_facts(self, connection: duckdb.DuckDBPyConnection, day: date) -> None:
        fingerprint = self._fingerprint(day)
        entry = self.facts.get(day)
        if entry and entry.fingerprint == fingerprint:
            return
        keys = {}
        for kind, query in (("launches", sql.launch_facts_sql()), ("orders", sql.order_facts_sql())):
            key = self._facts_key(day, kind, fingerprint)
            local = self.workdir / "facts" / key
            local.parent.mkdir(parents=True, exist_ok=True)
            connection.execute(
                f"COPY (SELECT DATE '{day.isoformat()}' AS day, facts.* FROM ({query}) AS facts) "
                f"TO {_quote(local)} (FORMAT parquet, COMPRESSION zstd)"
            )
            self.storage.put_bytes(key, local.read_bytes())
            keys[kind] = key
        stale = [entry.launches, entry.orders] if entry else []
        self.facts[day] = _FactsEntry(fingerprint, keys["launches"], keys["orders"])
        self._index_dirty = True
        self.storage.delete([key for key in stale if key not in keys.values()])

    def _load_history(self, connection: duckdb.DuckDBPyConnection, days: list[date]) -> None:
        for table, kind, types in (
            ("launch_history", "launches", _LAUNCH_FACT_TYPES),
            ("order_history", "orders", _ORDER_FACT_TYPES),
        ):
            connection.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({types})")
            paths = [self._local(getattr(self.facts[day], kind)) for day in days if day in self.facts]
            if paths:
                files = ", ".join(_quote(path) for path in paths)
                connection.execute(
                    f"INSERT INTO {table} SELECT * FROM read_parquet([{files}], hive_partitioning = false)"
                )

    # --- the facts index ------------------------------------------------------------------------

    @property
    def _index_key(self) -> str:
        return f"{state_prefix(self.app.app_id)}day_facts/index.json"

    def _load_index(self) -> dict[date, _FactsEntry]:
        try:
            raw = json.loads(self.storage.get_bytes(self._index_key))
        except NotFoundError:
            return {}
        if raw.get("facts_version") != FACTS_VERSION:
            return {}
        return {date.fromisoformat(day): _FactsEntry(**entry) for day, entry in raw["days"].items()}

    def save_index(self) -> None:
        if not self._index_dirty:
            return
        body = {
            "facts_version": FACTS_VERSION,
            "days": {
                day.isoformat(): {"fingerprint": e.fingerprint, "launches": e.launches, "orders": e.orders}
                for day, e in sorted(self.facts.items())
            },
        }
        self.storage.put_bytes(self._index_key, json.dumps(body, indent=1).encode(), "application/json")
        self._index_dirty = False
