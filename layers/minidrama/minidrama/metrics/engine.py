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

*Integrity*: ``index.json`` records the SHA-256 and size of every state file where it names it
(the facts index's :class:`~minidrama.metrics.facts.FactsFile`). A state file is read only after
it matched them and its columns are those of its kind; one that is missing, damaged or of another
shape is treated as absent and rebuilt from the events, with a warning logged. An index that cannot
be parsed counts as empty: everything is rebuilt. Events files have no recorded hash (they are
the source); one that cannot be read, or lacks the events columns, fails the computation with
:class:`~minidrama.metrics.exceptions.UnreadableEvents` naming it. No number comes from a file that
was not checked, and no I/O error of the lake is taken for damage: those propagate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import duckdb

from minidrama.config import AppConfig
from minidrama.lake import LocalStorage, NotFoundError, ObjectInfo, Storage, state_prefix
from minidrama.metrics import facts as stored
from minidrama.metrics import spans, sql
from minidrama.metrics.compaction import (
    check_event_files,
    declared_columns,
    event_files_by_partition,
    parquet_columns,
    unreadable_event_file,
)
from minidrama.metrics.definitions import DEFINITIONS, Retention, shared_relations
from minidrama.metrics.document import build_document
from minidrama.metrics.exceptions import DamagedFacts, UnreadableEvents
from minidrama.metrics.period import RETENTION_DAYS, Period
from minidrama.metrics.window import day_window, days_with_data

__all__ = ["MetricsSession", "connect", "run_definitions"]

logger = logging.getLogger(__name__)

STATE_VERSION = 3  # 3: every file's SHA-256 and size in the index
LAMBDA_MB_PER_VCPU = 1769
ROLLUPS_KEPT = 8  # recent rollups kept; an older day is recomputed from an older rollup or from scratch

# The columns of each kind of state file, in stored order.
_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "launches": (
        ("day", "DATE"),
        ("user_id", "VARCHAR"),
        ("os", "VARCHAR"),
        ("region", "VARCHAR"),
        ("launches", "BIGINT"),
    ),
    "orders": (
        ("day", "DATE"),
        ("event_name", "VARCHAR"),
        ("order_id", "VARCHAR"),
        ("event_id", "VARCHAR"),
        ("event_time", "TIMESTAMP WITH TIME ZONE"),
        ("user_id", "VARCHAR"),
        ("os", "VARCHAR"),
        ("region", "VARCHAR"),
        ("amount", "DECIMAL(38, 6)"),
        ("product_id", "VARCHAR"),
    ),
    "users": (("user_id", "VARCHAR"), ("os", "VARCHAR"), ("region", "VARCHAR"), ("first_day", "DATE")),
}
# The kinds of file of each area of the state.
_KINDS = {"day_facts": ("launches", "orders"), "rollups": ("users", "orders")}


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB sized to where it runs (a Lambda's memory and vCPUs, or the machine)."""
    config: dict[str, Any] = {"home_directory": tempfile.gettempdir()}
    lambda_memory_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "0"))
    if lambda_memory_mb:
        # Lambda gives one vCPU per 1,769 MB; leave a quarter of the memory to Python and buffers.
        config["threads"] = max(1, min(6, math.ceil(lambda_memory_mb / LAMBDA_MB_PER_VCPU)))
        config["memory_limit"] = f"{int(lambda_memory_mb * 0.75)}MB"
        config["temp_directory"] = str(Path(tempfile.gettempdir()) / "duckdb-spill")
    # No result depends on the order rows were inserted in (every order is an ORDER BY), and
    # keeping it costs memory on large materializations.
    config["preserve_insertion_order"] = False
    # Tables here live for one computation and are read a few times: compressing them as they
    # are written costs more than it saves (the first scan of a day's events paid ~0.2 s of it).
    config["force_compression"] = "uncompressed"
    connection = duckdb.connect(config=config)
    connection.execute("SET TimeZone = 'UTC'")
    return connection


def rows_of(connection: duckdb.DuckDBPyConnection, query: str) -> list[dict[str, Any]]:
    cursor = connection.execute(query)
    columns = [description[0] for description in cursor.description]
    return [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]


def run_definitions(
    connection: duckdb.DuckDBPyConnection, period: Period
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every definition's queries for ``period``, over the relations bound in ``connection``, after
    the relations they share (:func:`~minidrama.metrics.definitions.shared_relations`)."""
    for name, query in shared_relations(period).items():
        connection.execute(f"CREATE OR REPLACE TABLE {name} AS {query}")
    return {
        (definition.name, name): rows_of(connection, query)
        for definition in DEFINITIONS
        for name, query in definition.queries(period).items()
    }


def _quote(path: Path | str) -> str:
    return sql.quote(str(path))


def _parquet(paths: list[Path]) -> str:
    return f"read_parquet([{', '.join(_quote(path) for path in paths)}], hive_partitioning = false)"


@dataclass
class _Stored:
    """One state entry: what it was built from (fingerprint or chain) and its files by kind."""

    source: str
    files: dict[str, stored.FactsFile]

    def file_keys(self) -> list[str]:
        return [file.key for file in self.files.values()]


def _parse_file(raw: Any, prefix: str) -> stored.FactsFile:
    if not isinstance(raw, dict) or set(raw) != {"key", "sha256", "size"}:
        raise ValueError(f"a file entry is not {{key, sha256, size}}: {raw!r:.80}")
    key, digest, size = raw["key"], raw["sha256"], raw["size"]
    if not (isinstance(key, str) and key.startswith(prefix)):
        raise ValueError(f"a file key is not under {prefix}: {key!r:.80}")
    if not (isinstance(digest, str) and len(digest) == 64) or type(size) is not int:
        raise ValueError(f"the hash or size of {key} is not one")
    return stored.FactsFile(key, digest, size)


def _parse_index(data: bytes, prefix: str) -> dict[str, dict[date, _Stored]] | None:
    """The entries of each area of ``index.json``; None for the index of another state version.

    Raises ValueError, TypeError or KeyError when the index is not one (garbled, cut, edited).
    """
    raw = json.loads(data)
    if not isinstance(raw, dict):
        raise ValueError("the index is not a JSON object")
    if raw.get("state_version") != STATE_VERSION:
        return None
    areas: dict[str, dict[date, _Stored]] = {}
    for area, kinds in _KINDS.items():
        entries: dict[date, _Stored] = {}
        for day_text, entry in raw[area].items():
            day = date.fromisoformat(day_text)
            files = entry["files"]
            if not isinstance(entry["source"], str) or set(files) != set(kinds):
                raise ValueError(f"the {area} entry of {day_text} is not one")
            where = f"{prefix}{area}/dt={day.isoformat()}/"
            entries[day] = _Stored(entry["source"], {kind: _parse_file(files[kind], where) for kind in kinds})
        areas[area] = entries
    return areas


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
    # State files checked (or written) in this session: key -> a local file holding exactly
    # the bytes the index records. DuckDB reads state from nowhere else.
    _verified: dict[str, Path] = field(default_factory=dict)
    _checked_events: set[str] = field(default_factory=set)
    _probe: duckdb.DuckDBPyConnection | None = None  # for reading Parquet footers

    @classmethod
    @contextmanager
    def open(cls, storage: Storage, app: AppConfig) -> Iterator[MetricsSession]:
        """A session over the lake as listed now; the index is saved when the body succeeds."""
        workdir = Path(tempfile.mkdtemp(prefix="minidrama-metrics-"))
        session = cls(storage, app, workdir)
        try:
            session.partitions = event_files_by_partition(storage, app.app_id)
            session._data_days = sorted(days_with_data(session.partitions, app.timezone))
            session.facts_index = stored.FactsIndex.load(storage, app.app_id, app.timezone, strict=False)
            session._load_index()
            yield session
            session.save_index()
        finally:
            if session._probe is not None:
                session._probe.close()
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
            self._load_state(connection, "rollup_users", "users", [previous] if previous else [])
            self._load_state(connection, "rollup_orders", "orders", [previous] if previous else [])
            self._load_state(connection, "cohort_launches", "launches", cohort_facts)
            connection.execute("INSERT INTO cohort_launches SELECT ?, * FROM day_launches", [day])
            for statement in sql.prepare_sql(day):
                connection.execute(statement)
            # user_first and history_orders hold the rollup's rows now: free its copy
            connection.execute("DROP TABLE rollup_users")
            connection.execute("DROP TABLE rollup_orders")
            self._store_rollup(connection, day, "user_first", "history_orders")
            # the day's facts are written while the definitions run (they read the tables)
            with ThreadPoolExecutor(max_workers=1) as writer:
                written = writer.submit(
                    self._write_public_facts, connection.cursor(), day, self._build_facts(connection, day)
                )
                # the definitions read the facts, first_launch, first_recharge, cohort_launches and
                # history_orders: free what only built them
                for table in ("day_events", "day_page_views", "day_launches", "day_orders", "user_first"):
                    connection.execute(f"DROP TABLE {table}")
                results = run_definitions(connection, period)
                document_facts = self._write_document_facts(connection, day, results)
                self._index_public_facts(day, {**written.result(), **document_facts})
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

    def refresh_spans(self) -> list[spans.Span]:
        """Build the span rollups of the computed days that are missing or stale (see
        :mod:`minidrama.metrics.spans`); the spans built."""
        connection = connect()

        def put(query: str, key_of: Callable[[str], str]) -> stored.FactsFile:
            cursor = connection.cursor()  # one per writing thread
            try:
                return self._put_parquet(cursor, query, key_of)
            finally:
                cursor.close()

        try:
            built, replaced = spans.refresh(self.facts_index, self.app.app_id, put, self._verified_fact)
        finally:
            connection.close()
        if built or replaced:
            self._garbage.extend(replaced)
            self._dirty = True
        return built

    def _verified_fact(self, file: stored.FactsFile) -> Path:
        """A local copy of an indexed facts file, checked against its SHA-256 once per session."""
        if file.key not in self._verified:
            self._verified[file.key] = stored.verified_path(self.storage, file, self.workdir / "lake")
        return self._verified[file.key]

    def _build_facts(self, connection: duckdb.DuckDBPyConnection, day: date) -> list[str]:
        """Build the day's stored facts as tables ``fact_{table}``, bound for the definitions as
        views ``{table}`` (with ``day``); their table names."""
        literal = f"DATE '{day.isoformat()}'"
        for table, query in stored.build_sql(day).items():
            connection.execute(f"CREATE OR REPLACE TABLE fact_{table} AS {query}")
            connection.execute(
                f"CREATE OR REPLACE VIEW {table} AS SELECT {literal} AS day, * FROM fact_{table}"
            )
        return list(stored.TABLES)

    def _write_public_facts(
        self, cursor: duckdb.DuckDBPyConnection, day: date, tables: list[str]
    ) -> dict[str, stored.FactsFile]:
        """Write the built facts of ``day`` to the lake (on ``cursor``, its own connection)."""
        try:
            return {table: self._put_fact_table(cursor, day, table) for table in tables}
        finally:
            cursor.close()

    def _put_fact_table(
        self, connection: duckdb.DuckDBPyConnection, day: date, table: str
    ) -> stored.FactsFile:
        """Write the table ``fact_{table}`` as the day's facts file of ``table``, in stored order."""
        return self._put_parquet(
            connection,
            f"(SELECT * FROM fact_{table} ORDER BY {stored.SORTED_BY[table]})",
            partial(stored.facts_key, table, self.app.app_id, day),
        )

    def _write_document_facts(
        self, connection: duckdb.DuckDBPyConnection, day: date, results: dict[tuple[str, str], list[Any]]
    ) -> dict[str, stored.FactsFile]:
        """Write the facts taken from the day's results (:data:`~minidrama.metrics.facts.DOCUMENT_TABLES`).

        A cohort's counts name the chain of its day (its events and every earlier day's, as now):
        the cohort's own row (written when C is computed) and its returns (when C + N is) agree on
        it exactly when both were computed from the same history up to C."""
        cohorts = [day, *(day - timedelta(days=offset) for offset in RETENTION_DAYS)]
        rows = Retention.stored_rows(day, results, {cohort: self._chain(cohort) for cohort in cohorts})
        columns = stored.ALL_TABLES["retention"]
        typed = ", ".join(f"{name} {stored.SQL_TYPES[kind]}" for name, kind in columns)
        connection.execute(f"CREATE OR REPLACE TABLE fact_retention ({typed})")
        connection.executemany(f"INSERT INTO fact_retention VALUES ({', '.join('?' * len(columns))})", rows)
        return {"retention": self._put_fact_table(connection, day, "retention")}

    def _index_public_facts(self, day: date, written: dict[str, stored.FactsFile]) -> None:
        # Replaced files go once the index stops naming them (one rewritten unchanged stays).
        self._garbage.extend(entry.key for entry in self.facts_index.days.get(day, {}).values())
        self.facts_index.days[day] = written
        self._dirty = True

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

    def _event_files(self, connection: duckdb.DuckDBPyConnection, day: date) -> dict[str, Path]:
        """The day's events files (key -> local path), each checked once per session."""
        files = {}
        for info in self.day_files(day):
            try:
                files[info.key] = self._local(info.key)
            except NotFoundError as error:
                raise UnreadableEvents(info.key, "was listed but is gone (compacted meanwhile?)") from error
        check_event_files(connection, {k: p for k, p in files.items() if k not in self._checked_events})
        self._checked_events.update(files)
        return files

    def _load_day(self, connection: duckdb.DuckDBPyConnection, day: date) -> None:
        """``day_events``, ``day_page_views``, ``day_launches`` and ``day_orders`` of ``day``."""
        window = day_window(day, self.app.timezone)
        files = self._event_files(connection, day)
        source = sql.read_events([str(path) for path in files.values()])
        events = sql.window_events_sql(source, window.start, window.end)
        try:
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
        except duckdb.Error as error:
            raise unreadable_event_file(connection, files, error) from error
        connection.execute("DROP TABLE IF EXISTS day_copies")
        connection.execute("DROP TABLE IF EXISTS day_deduplicated")
        connection.execute("CREATE OR REPLACE TABLE day_launches AS " + sql.launch_facts_sql())
        connection.execute("CREATE OR REPLACE TABLE day_orders AS " + sql.order_facts_sql())

    # --- day facts ----------------------------------------------------------------------------

    def _state_key(self, area: str, day: date, kind: str, digest: str) -> str:
        """Named by content, like the stored facts: a key never holds two different files."""
        return f"{state_prefix(self.app.app_id)}{area}/dt={day.isoformat()}/{kind}-{digest[:24]}.parquet"

    def _put_parquet(
        self, connection: duckdb.DuckDBPyConnection, relation: str, key_of: Callable[[str], str]
    ) -> stored.FactsFile:
        """Write ``relation`` (a table, or a query in parentheses) as zstd Parquet to the lake, under
        the key ``key_of`` gives for its SHA-256; the local copy counts as verified."""
        scratch = self.workdir / "out" / f"scratch-{threading.get_ident()}.parquet"  # one per writer
        scratch.parent.mkdir(parents=True, exist_ok=True)
        connection.execute(f"COPY {relation} TO {_quote(scratch)} (FORMAT parquet, COMPRESSION zstd)")
        data = scratch.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        key = key_of(digest)
        self.storage.put_bytes(key, data)
        local = self.workdir / "out" / key
        local.parent.mkdir(parents=True, exist_ok=True)
        scratch.replace(local)
        self._verified[key] = local
        return stored.FactsFile(key, digest, len(data))

    def _write_state(
        self,
        connection: duckdb.DuckDBPyConnection,
        area: str,
        day: date,
        source: str,
        queries: dict[str, str],
    ) -> _Stored:
        files = {
            kind: self._put_parquet(connection, f"({query})", partial(self._state_key, area, day, kind))
            for kind, query in queries.items()
        }
        self._dirty = True
        return _Stored(source, files)

    # --- checking state before it is read ------------------------------------------------------

    def _probe_connection(self) -> duckdb.DuckDBPyConnection:
        if self._probe is None:
            self._probe = duckdb.connect()
        return self._probe

    def _damage(self, kind: str, file: stored.FactsFile) -> str | None:
        """Why the state file ``file`` of ``kind`` cannot be used, or None (then it is in ``_verified``)."""
        try:
            path = stored.verified_path(self.storage, file, self.workdir / "lake")
        except DamagedFacts as error:
            if isinstance(error.__cause__, NotFoundError | FileNotFoundError):
                return "missing"
            return "does not match its recorded size and SHA-256"
        connection = self._probe_connection()
        try:
            found = parquet_columns(connection, path)
        except duckdb.Error as error:
            return f"cannot be read ({str(error).strip().splitlines()[0]})"
        if found != declared_columns(connection, _COLUMNS[kind]):
            return f"does not have the columns of a {kind} file"
        self._verified[file.key] = path
        return None

    def _intact(self, area: str, day: date, entry: _Stored) -> bool:
        """Whether every file of ``entry`` matches its recorded size and SHA-256 and has the columns
        of its kind; each file is checked once per session (and then read from the checked copy)."""
        for kind, file in entry.files.items():
            if file.key in self._verified:
                continue
            reason = self._damage(kind, file)
            if reason is not None:
                logger.warning(
                    "state file damaged; rebuilding it from the events",
                    extra={
                        "app_id": self.app.app_id,
                        "area": area,
                        "day": day.isoformat(),
                        "state_key": file.key,
                        "reason": reason,
                    },
                )
                return False
        return True

    def _usable(self, entries: dict[date, _Stored], area: str, day: date, source: str) -> _Stored | None:
        """The entry of ``day`` if it was built from ``source`` and is intact. A damaged one is
        dropped (rebuilt by the caller); its files go when the next index is written."""
        entry = entries.get(day)
        if entry is None or entry.source != source:
            return None
        if self._intact(area, day, entry):
            return entry
        del entries[day]
        self._garbage.extend(entry.file_keys())
        self._dirty = True
        return None

    # --- day facts, checked -------------------------------------------------------------------

    def _fresh_facts(self, day: date) -> _Stored:
        """The day facts of ``day``, rebuilt from its events when they changed or are damaged."""
        usable = self._usable(self.facts, "day_facts", day, self._fingerprint(day))
        if usable:
            return usable
        connection = connect()
        try:
            self._load_day(connection, day)
            return self._store_facts(connection, day)
        finally:
            connection.close()

    def _store_facts(self, connection: duckdb.DuckDBPyConnection, day: date) -> _Stored:
        fingerprint = self._fingerprint(day)
        previous = self.facts.get(day)
        if previous and previous.source == fingerprint:
            return previous  # not read here: checked when it is (_usable)
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
        if previous:
            self._garbage.extend(previous.file_keys())
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
        usable = self._usable(self.rollups, "rollups", day, chain)
        if usable:
            return usable
        base, since = None, date.min
        for earlier in sorted((earlier for earlier in self.rollups if earlier < day), reverse=True):
            base = self._usable(self.rollups, "rollups", earlier, self._chain(earlier))
            if base:
                since = earlier
                break
        folded = [self._fresh_facts(data_day) for data_day in self._data_days if since < data_day <= day]
        connection = connect()
        try:
            self._load_state(connection, "base_users", "users", [base] if base else [])
            self._load_state(connection, "base_orders", "orders", [base] if base else [])
            self._load_state(connection, "new_launches", "launches", folded)
            self._load_state(connection, "new_orders", "orders", folded)
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
        previous = self.rollups.get(day)
        if previous and previous.source == chain:
            return previous  # not read here: checked when it is (_usable)
        fresh = self._write_state(
            connection,
            "rollups",
            day,
            chain,
            {"users": f"SELECT * FROM {users}", "orders": f"SELECT {sql.ORDER_COLUMNS} FROM {orders}"},
        )
        self.rollups[day] = fresh
        if previous:
            self._garbage.extend(previous.file_keys())
        return fresh

    def _load_state(
        self, connection: duckdb.DuckDBPyConnection, table: str, kind: str, entries: list[_Stored]
    ) -> None:
        """Table ``table`` holding the ``kind`` files of ``entries``, read from their checked copies."""
        columns = _COLUMNS[kind]
        connection.execute(f"CREATE OR REPLACE TABLE {table} ({', '.join(' '.join(c) for c in columns)})")
        if entries:
            # KeyError here would be a file used without being checked (_usable) or written.
            paths = [self._verified[entry.files[kind].key] for entry in entries]
            names = ", ".join(name for name, _type in columns)
            connection.execute(f"INSERT INTO {table} SELECT {names} FROM {_parquet(paths)}")

    # --- the index ----------------------------------------------------------------------------

    def _named(self) -> set[str]:
        """Every state file an entry names."""
        return {
            key for entries in (self.facts, self.rollups) for e in entries.values() for key in e.file_keys()
        }

    @property
    def _index_key(self) -> str:
        return f"{state_prefix(self.app.app_id)}index.json"

    def _read_index(self) -> dict[str, dict[date, _Stored]]:
        """The stored entries by area; none for a missing index, an older state version (rebuilt
        from the events) or an index that cannot be parsed (rebuilt too, with a warning)."""
        prefix = state_prefix(self.app.app_id)
        try:
            areas = _parse_index(self.storage.get_bytes(self._index_key), prefix)
        except NotFoundError:
            return {}
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
            logger.warning(
                "state index unreadable; all state is rebuilt from the events",
                extra={"app_id": self.app.app_id, "state_key": self._index_key, "reason": str(error)[:200]},
            )
            self._dirty = True
            return {}
        return areas or {}

    def _load_index(self) -> None:
        sizes = {info.key: info.size for info in self.storage.list(state_prefix(self.app.app_id))}
        sizes.pop(self._index_key, None)
        present = set(sizes)
        areas = self._read_index()
        for area, target in (("day_facts", self.facts), ("rollups", self.rollups)):
            for day, entry in areas.get(area, {}).items():
                # A file that is gone or has another size is damage the listing shows already; its
                # entry is dropped and rebuilt when needed (the full check is made on reading).
                lost = [file for file in entry.files.values() if sizes.get(file.key) != file.size]
                if lost:
                    logger.warning(
                        "state file damaged; rebuilding it from the events",
                        extra={
                            "app_id": self.app.app_id,
                            "area": area,
                            "day": day.isoformat(),
                            "state_key": lost[0].key,
                            "reason": "missing" if lost[0].key not in sizes else "not of its recorded size",
                        },
                    )
                    self._dirty = True
                else:
                    target[day] = entry
        # Files no entry names (an older state version, a run that stopped before its index, a
        # damaged file) go with the next index written.
        named = self._named()
        present |= {
            info.key
            for table in (*stored.ALL_TABLES, *spans.SPAN_TABLES)
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
                self._garbage.extend(self.rollups.pop(day).file_keys())
        body = {
            "state_version": STATE_VERSION,
            "timezone": self.app.timezone,
            **{
                area: {
                    day.isoformat(): {
                        "source": e.source,
                        "files": {kind: vars(file) for kind, file in e.files.items()},
                    }
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
        named = self.facts_index.keys() | self._named()
        self.storage.delete(sorted(set(self._garbage) - named))
        self._garbage = []
