"""Run the metric SQL with DuckDB over the lake, keeping a day's cost proportional to that day.

State, under ``state/app_id={app}/`` (Parquet files written by DuckDB, listed in ``index.json``):

*Day facts*, for every calendar day C (app time zone) that has events, built from C's events:
``launches`` (successful launches per user, os and region) and ``orders`` (C's orders, the
earliest copy of each ``order_id`` per order event name). Each carries the *fingerprint* of the
event files it was built from (keys and versions of the hour partitions covering C, and the time
zone); when those files change (late events, compaction) the facts are rebuilt before use.

*Rollups*: the state of all days up to X: the first day each (user, os, region) launched, and the
standing copy of every order ever. A rollup carries a *chain*: a hash over the fingerprints of all
days up to X, so it is valid exactly while no day up to X has changed. The rollup of D-1 is the
previous rollup folded with the day facts of the days since; the rollup of D is stored after D is
computed, so the next day starts from it.

Computing D reads D's events, the rollup of D-1, and the launch facts of the cohort days of
retention and LTV (D-1, D-7, D-14, D-30). None of that grows with the length of the history but the
rollup, which holds one row per user and os/region and one per order. Computing days in any order,
recomputing, or computing after late events arrive gives the same documents as one clean pass.
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
from minidrama.metrics import facts as stored
from minidrama.metrics import sql
from minidrama.metrics.compaction import event_files_by_partition
from minidrama.metrics.definitions import DEFINITIONS
from minidrama.metrics.document import build_document
from minidrama.metrics.period import Period
from minidrama.metrics.window import day_window, days_with_data

__all__ = ["MetricsSession", "connect", "run_definitions"]

STATE_VERSION = 2
LAMBDA_MB_PER_VCPU = 1769
ROLLUPS_KEPT = 8  # recent rollups kept; an older day is recomputed from an older rollup or from scratch

_TYPES = {
    "launches": "day DATE, user_id VARCHAR, os VARCHAR, region VARCHAR, launches BIGINT",
    "orders": (
        "day DATE, event_name VARCHAR, order_id VARCHAR, event_id VARCHAR,"
        " event_time TIMESTAMP WITH TIME ZONE, user_id VARCHAR, os VARCHAR, region VARCHAR,"
        " amount DECIMAL(38, 6), product_id VARCHAR"
    ),
    "users": "user_id VARCHAR, os VARCHAR, region VARCHAR, first_day DATE",
}


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


def run_definitions(
    connection: duckdb.DuckDBPyConnection, period: Period
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every definition's queries for ``period``, over the relations bound in ``connection``."""
    return {
        (definition.name, name): _rows(connection, query)
        for definition in DEFINITIONS
        for name, query in definition.queries(period).items()
    }


def _quote(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _parquet(paths: list[Path]) -> str:
    return f"read_parquet([{', '.join(_quote(path) for path in paths)}], hive_partitioning = false)"


@dataclass
class _Stored:
    """One state entry: what it was built from (fingerprint or chain) and its files by kind."""

    source: str
    files: dict[str, str]


@dataclass
class MetricsSession:
    """Computes documents for one app; lists the lake once and reuses state across days."""

    storage: Storage
    app: AppConfig
    workdir: Path
    partitions: dict[tuple[date, int], list[ObjectInfo]] = field(default_factory=dict)
    facts: dict[date, _Stored] = field(default_factory=dict)
    rollups: dict[date, _Stored] = field(default_factory=dict)
    _data_days: list[date] = field(default_factory=list)
    _chains: dict[date, str] = field(default_factory=dict)
    _fingerprints: dict[date, str] = field(default_factory=dict)  # the listing is fixed per session
    facts_index: stored.FactsIndex = field(init=False)
    _dirty: bool = False
    _garbage: list[str] = field(default_factory=list)  # replaced state files, deleted after the index

    @classmethod
    @contextmanager
    def open(cls, storage: Storage, app: AppConfig) -> Iterator[MetricsSession]:
        workdir = Path(tempfile.mkdtemp(prefix="minidrama-metrics-"))
        try:
            session = cls(storage, app, workdir)
            session.partitions = event_files_by_partition(storage, app.app_id)
            session._data_days = sorted(days_with_data(session.partitions, app.timezone))
            session.facts_index = stored.FactsIndex.load(storage, app.app_id, app.timezone, strict=False)
            session._load_index()
            yield session
            session.save_index()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    # --- the document -------------------------------------------------------------------------

    def document(self, day: date, generated_at: datetime | None = None) -> dict[str, Any]:
        """The metrics document of ``day`` (SPEC section 6); the day's facts are stored on the way."""
        period = Period.day(day)
        previous = self._rollup(day - timedelta(days=1))
        cohort_facts = [
            self._fresh_facts(cohort)
            for cohort in period.cohort_days
            if cohort != day and cohort in self._data_days
        ]
        connection = connect()
        try:
            self._load_day(connection, day)
            self._store_facts(connection, day)
            self._load_state(
                connection, "rollup_users", "users", [previous.files["users"]] if previous else []
            )
            self._load_state(
                connection, "rollup_orders", "orders", [previous.files["orders"]] if previous else []
            )
            self._load_state(
                connection, "cohort_launches", "launches", [f.files["launches"] for f in cohort_facts]
            )
            connection.execute("INSERT INTO cohort_launches SELECT ?, * FROM day_launches", [day])
            for statement in sql.prepare_sql(day):
                connection.execute(statement)
            self._store_rollup(connection, day, "user_first", "history_orders")
            self._store_public_facts(connection, day)
            results = run_definitions(connection, period)
        finally:
            connection.close()
        return build_document(
            app_id=self.app.app_id,
            period=period,
            timezone=self.app.timezone,
            currency=self.app.currency,
            generated_at=generated_at or datetime.now(UTC),
            results=results,
        )

    def _store_public_facts(self, connection: duckdb.DuckDBPyConnection, day: date) -> None:
        """Build, write and index the day's stored facts; bind them for the definitions."""
        literal = f"DATE '{day.isoformat()}'"
        written = {}
        for table, query in stored.build_sql(day).items():
            connection.execute(f"CREATE OR REPLACE TABLE fact_{table} AS {query}")
            local = self.workdir / "out" / "facts" / f"{table}-{day.isoformat()}.parquet"
            local.parent.mkdir(parents=True, exist_ok=True)
            connection.execute(f"COPY fact_{table} TO {_quote(local)} (FORMAT parquet, COMPRESSION zstd)")
            data = local.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            key = stored.facts_key(table, self.app.app_id, day, digest)
            self.storage.put_bytes(key, data)
            written[table] = stored.FactsFile(key, digest, len(data))
            connection.execute(
                f"CREATE OR REPLACE VIEW {table} AS SELECT {literal} AS day, * FROM fact_{table}"
            )
        replaced = self.facts_index.days.get(day, {})
        self._garbage.extend(
            entry.key for table, entry in replaced.items() if written.get(table, entry).key != entry.key
        )
        self.facts_index.days[day] = written
        self._dirty = True
        connection.execute(
            "CREATE OR REPLACE VIEW recharges AS SELECT day, user_id, amount FROM history_orders"
            " WHERE event_name = 'recharge_order'"
        )

    # --- events of one day --------------------------------------------------------------------

    def day_files(self, day: date) -> list[ObjectInfo]:
        window = day_window(day, self.app.timezone)
        return [info for hour in window.hours for info in self.partitions.get(hour, [])]

    def _fingerprint(self, day: date) -> str:
        if day not in self._fingerprints:
            digest = hashlib.sha256(f"v{STATE_VERSION}|{self.app.timezone}|{day.isoformat()}".encode())
            for info in self.day_files(day):
                digest.update(f"|{info.key}:{info.version}".encode())
            self._fingerprints[day] = digest.hexdigest()
        return self._fingerprints[day]

    def _local(self, key: str) -> Path:
        if isinstance(self.storage, LocalStorage):
            return self.storage.path(key)
        target = self.workdir / "lake" / key
        if not target.exists():
            self.storage.local_copy(key, self.workdir / "lake")
        return target

    def _load_day(self, connection: duckdb.DuckDBPyConnection, day: date) -> None:
        """``day_events``, ``day_page_views``, ``day_launches`` and ``day_orders`` of ``day``."""
        window = day_window(day, self.app.timezone)
        source = sql.read_events([str(self._local(info.key)) for info in self.day_files(day)])
        events = sql.window_events_sql(source, window.start, window.end)
        # Copies are rare: only when an event_id repeats are the day's events materialized and
        # deduplicated first; otherwise both tables are read straight from the files.
        (repeated,) = connection.execute(sql.repeated_event_ids_sql(events)).fetchone() or (0,)
        if repeated:
            connection.execute("CREATE OR REPLACE TABLE day_copies AS SELECT * FROM " + events)
            connection.execute(
                "CREATE OR REPLACE TABLE day_deduplicated AS " + sql.dedupe_day_events_sql("day_copies")
            )
            events = "day_deduplicated"
        connection.execute("CREATE OR REPLACE TABLE day_events AS " + sql.day_events_sql(events))
        connection.execute("CREATE OR REPLACE TABLE day_page_views AS " + sql.day_page_views_sql(events))
        connection.execute("DROP TABLE IF EXISTS day_copies")
        connection.execute("DROP TABLE IF EXISTS day_deduplicated")
        connection.execute("CREATE OR REPLACE TABLE day_launches AS " + sql.launch_facts_sql())
        connection.execute("CREATE OR REPLACE TABLE day_orders AS " + sql.order_facts_sql())

    # --- day facts ----------------------------------------------------------------------------

    def _state_key(self, area: str, day: date, kind: str, source: str) -> str:
        return f"{state_prefix(self.app.app_id)}{area}/dt={day.isoformat()}/{kind}-{source[:20]}.parquet"

    def _write_state(
        self,
        connection: duckdb.DuckDBPyConnection,
        area: str,
        day: date,
        source: str,
        queries: dict[str, str],
    ) -> _Stored:
        files = {}
        for kind, query in queries.items():
            key = self._state_key(area, day, kind, source)
            local = self.workdir / "out" / key
            local.parent.mkdir(parents=True, exist_ok=True)
            connection.execute(f"COPY ({query}) TO {_quote(local)} (FORMAT parquet, COMPRESSION zstd)")
            self.storage.put_bytes(key, local.read_bytes())
            files[kind] = key
        self._dirty = True
        return _Stored(source, files)

    def _fresh_facts(self, day: date) -> _Stored:
        """The day facts of ``day``, rebuilt from its events when they changed."""
        fingerprint = self._fingerprint(day)
        stored = self.facts.get(day)
        if stored and stored.source == fingerprint:
            return stored
        connection = connect()
        try:
            self._load_day(connection, day)
            return self._store_facts(connection, day)
        finally:
            connection.close()

    def _store_facts(self, connection: duckdb.DuckDBPyConnection, day: date) -> _Stored:
        fingerprint = self._fingerprint(day)
        stored = self.facts.get(day)
        if stored and stored.source == fingerprint:
            return stored
        literal = f"DATE '{day.isoformat()}'"
        fresh = self._write_state(
            connection,
            "day_facts",
            day,
            fingerprint,
            {
                "launches": f"SELECT {literal} AS day, * FROM day_launches",
                "orders": f"SELECT {literal} AS day, * FROM day_orders",
            },
        )
        self.facts[day] = fresh
        if stored:
            self._garbage.extend(stored.files.values())
        return fresh

    # --- rollups ------------------------------------------------------------------------------

    def _chain(self, day: date) -> str:
        """A hash over the fingerprints of every day with events up to ``day``."""
        if not self._chains:
            digest = hashlib.sha256(f"v{STATE_VERSION}|{self.app.timezone}".encode())
            for data_day in self._data_days:
                digest.update(self._fingerprint(data_day).encode())
                self._chains[data_day] = digest.hexdigest()
        earlier = [data_day for data_day in self._data_days if data_day <= day]
        return self._chains[earlier[-1]] if earlier else "empty"

    def _rollup(self, day: date) -> _Stored | None:
        """The rollup of all days up to ``day`` (None when there is nothing up to it)."""
        chain = self._chain(day)
        if chain == "empty":
            return None
        stored = self.rollups.get(day)
        if stored and stored.source == chain:
            return stored
        valid = [
            earlier
            for earlier, entry in self.rollups.items()
            if earlier < day and entry.source == self._chain(earlier)
        ]
        base = self.rollups[max(valid)] if valid else None
        since = max(valid) if valid else date.min
        folded = [self._fresh_facts(data_day) for data_day in self._data_days if since < data_day <= day]
        connection = connect()
        try:
            self._load_state(connection, "base_users", "users", [base.files["users"]] if base else [])
            self._load_state(connection, "base_orders", "orders", [base.files["orders"]] if base else [])
            self._load_state(connection, "new_launches", "launches", [f.files["launches"] for f in folded])
            self._load_state(connection, "new_orders", "orders", [f.files["orders"] for f in folded])
            connection.execute(
                "CREATE TABLE folded_users AS "
                + sql.fold_users_sql(
                    [
                        "base_users",
                        "(SELECT user_id, os, region, day AS first_day FROM new_launches) AS new_days",
                    ]
                )
            )
            connection.execute(
                "CREATE TABLE folded_orders AS " + sql.fold_orders_sql(["base_orders", "new_orders"])
            )
            return self._store_rollup(connection, day, "folded_users", "folded_orders")
        finally:
            connection.close()

    def _store_rollup(
        self, connection: duckdb.DuckDBPyConnection, day: date, users: str, orders: str
    ) -> _Stored:
        chain = self._chain(day)
        stored = self.rollups.get(day)
        if stored and stored.source == chain:
            return stored
        fresh = self._write_state(
            connection,
            "rollups",
            day,
            chain,
            {"users": f"SELECT * FROM {users}", "orders": f"SELECT {sql.ORDER_COLUMNS} FROM {orders}"},
        )
        self.rollups[day] = fresh
        if stored:
            self._garbage.extend(stored.files.values())
        return fresh

    def _load_state(
        self, connection: duckdb.DuckDBPyConnection, table: str, kind: str, keys: list[str]
    ) -> None:
        columns = _TYPES[kind]
        connection.execute(f"CREATE OR REPLACE TABLE {table} ({columns})")
        if keys:
            paths = [self._local(key) for key in keys]
            connection.execute(f"INSERT INTO {table} SELECT * FROM {_parquet(paths)}")

    # --- the index ----------------------------------------------------------------------------

    @property
    def _index_key(self) -> str:
        return f"{state_prefix(self.app.app_id)}index.json"

    def _load_index(self) -> None:
        present = {info.key for info in self.storage.list(state_prefix(self.app.app_id))} - {self._index_key}
        try:
            raw = json.loads(self.storage.get_bytes(self._index_key))
        except NotFoundError:
            raw = {}
        if raw.get("state_version") == STATE_VERSION:  # older state is rebuilt from the events
            # An entry whose files are gone (a run stopped between deleting and writing the index)
            # is dropped and rebuilt: state is a cache of what the events say.
            for area, target in (("day_facts", self.facts), ("rollups", self.rollups)):
                for day, entry in raw[area].items():
                    if set(entry["files"].values()) <= present:
                        target[date.fromisoformat(day)] = _Stored(entry["source"], entry["files"])
                    else:
                        self._dirty = True
        # Files no entry names (an older state version, a run that stopped before its index) go
        # with the next index written.
        named = {
            key
            for entries in (self.facts, self.rollups)
            for e in entries.values()
            for key in e.files.values()
        }
        present |= {
            info.key
            for table in stored.TABLES
            for info in self.storage.list(stored.table_prefix(table, self.app.app_id))
        }
        named |= self.facts_index.keys()
        orphans = sorted(present - named)
        if orphans:
            self._garbage.extend(orphans)
            self._dirty = True

    def save_index(self) -> None:
        if not self._dirty:
            return
        if len(self.rollups) > ROLLUPS_KEPT:
            for day in sorted(self.rollups)[:-ROLLUPS_KEPT]:
                self._garbage.extend(self.rollups.pop(day).files.values())
        body = {
            "state_version": STATE_VERSION,
            "timezone": self.app.timezone,
            **{
                area: {
                    day.isoformat(): {"source": e.source, "files": e.files}
                    for day, e in sorted(entries.items())
                }
                for area, entries in (("day_facts", self.facts), ("rollups", self.rollups))
            },
        }
        self.storage.put_bytes(
            stored.facts_index_key(self.app.app_id), self.facts_index.to_bytes(), "application/json"
        )
        self.storage.put_bytes(self._index_key, json.dumps(body, indent=1).encode(), "application/json")
        self._dirty = False
        # Only once the index no longer names them: a stop in between leaves files, not holes.
        # A file written again with the same content (same key) is named again: keep it.
        named = self.facts_index.keys() | {
            key
            for entries in (self.facts, self.rollups)
            for e in entries.values()
            for key in e.files.values()
        }
        self.storage.delete(sorted(set(self._garbage) - named))
        self._garbage = []
