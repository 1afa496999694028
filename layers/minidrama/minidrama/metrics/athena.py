"""The Athena engine: one day's stored facts and document computed on Athena, for days too large
for the embedded engine (README, "The Athena engine").

A day's run is a plan of statements in stages; each stage's statements run in parallel (the
state machine ``AthenaDayStateMachine`` of ``template.yaml``: a ``Map`` of
``athena:startQueryExecution.sync`` per stage, stages one after another), and each stage reads
only the tables of the stages before it:

1. from the ``events`` table: ``day_events`` and ``day_page_views`` (the day's events, each
   ``event_id`` once), ``launch_days`` (successful launches per local day, user, os and region, over
   all history up to the day) and ``history_orders`` (the standing copy of every order up to it);
2. what the engine derives from them: ``user_first``, ``first_launch``, ``first_recharge``,
   ``day_standing_orders``, ``recharges``, ``cohort_launches`` (:mod:`minidrama.metrics.sql`);
3. the day's stored facts (:func:`minidrama.metrics.facts.build_sql`), each with its ``day``;
4. the relations the definitions share (:func:`minidrama.metrics.definitions.shared_relations`);
5. every definition's queries (:mod:`minidrama.metrics.definitions`), unloaded as Parquet.

Stages 1 to 4 are ``CREATE TABLE AS`` into run tables (``{database}.run_{run}_{relation}``, files
under ``athena-runs/``); stage 5 is ``UNLOAD``. The SQL is the embedded engine's own SQL (the same
functions write it) in DuckDB's dialect, with the engine's state (rollups, day facts) replaced by
history read from the events; :func:`DayPlan.payload` translates it for Athena with
:mod:`minidrama.metrics.dialects`. The Athena run holds no state of its own: it reads the events,
each ``event_id`` once per calendar day, exactly as the embedded engine counts them, so it is
exact whatever was compacted or re-sent.

:func:`assemble_day` then reads the unloaded rows and the facts tables' files, writes the facts
files and the facts index exactly as the embedded engine does, and the document assembled by the
same pure code (:func:`minidrama.metrics.document.build_document`) with ``"engine": "athena"``.
Nothing is written before every statement has succeeded: a failed query leaves the day as it was.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from minidrama.config import AppConfig
from minidrama.lake import Storage, events_partition, metrics_key
from minidrama.metrics import facts as stored
from minidrama.metrics import sql
from minidrama.metrics.compaction import readable_files
from minidrama.metrics.definitions import DEFINITIONS, shared_relations
from minidrama.metrics.document import build_document
from minidrama.metrics.period import Period
from minidrama.metrics.window import day_window
from minidrama.schema import KNOWN_EVENT_NAMES

__all__ = [
    "RUNS_PREFIX",
    "Statement",
    "DayPlan",
    "plan_day",
    "assemble_day",
    "day_event_bytes",
    "execution_name",
    "MissingResults",
]

RUNS_PREFIX = "athena-runs/"
EVENTS_TABLE = "events"


class MissingResults(RuntimeError):
    """A run's results are not all there (a statement that did not run, or a run already cleaned)."""


@dataclass(frozen=True)
class Statement:
    """One query of a run: a table created as a select (``kind`` "table") or rows unloaded."""

    name: str  # the relation it creates ("user_days") or the results it unloads ("iap_users/main")
    kind: str  # "table" | "unload"
    select: str  # DuckDB SQL over the events table and earlier stages' relations (bare names)
    location: str  # s3://bucket/athena-runs/... (empty: the run writes nowhere else)


@dataclass(frozen=True)
class DayPlan:
    app_id: str
    day: date
    run: str
    bucket: str
    database: str
    stages: tuple[tuple[Statement, ...], ...]

    def table(self, relation: str) -> str:
        """The run table of ``relation``: ``run_{run}_{relation}``."""
        return f"run_{self.run}_{relation}"

    @property
    def tables(self) -> list[str]:
        return [self.table(s.name) for stage in self.stages for s in stage if s.kind == "table"]

    def query(self, statement: Statement, dialect: str) -> str:
        """``statement`` as the query string sent to the engine of ``dialect``."""
        from sqlglot import exp, parse_one

        from minidrama.metrics.dialects import transpile

        relations = {s.name for stage in self.stages for s in stage if s.kind == "table"}
        tree = parse_one(statement.select, read="duckdb")
        own = {cte.alias for cte in tree.find_all(exp.CTE)}

        def qualify(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Table) and not node.args.get("db") and node.name not in own:
                # keeps the name the query refers to it by (its alias, or the relation's own name)
                if node.name in relations:
                    return exp.table_(self.table(node.name), db=self.database, alias=node.alias or node.name)
                if node.name == EVENTS_TABLE:
                    return exp.table_(EVENTS_TABLE, db=self.database, alias=node.alias or node.name)
            return node

        select = tree.transform(qualify).sql(dialect="duckdb")
        body = select if dialect == "duckdb" else transpile(select, dialect)
        if statement.kind == "table":
            target = f"{self.database}.{self.table(statement.name)}"
            if dialect == "duckdb":
                return f"CREATE TABLE {target} AS\n{body}"
            return (
                f"CREATE TABLE {target}\n"
                f"WITH (format = 'PARQUET', write_compression = 'ZSTD', external_location = "
                f"'{statement.location}')\nAS\n{body}"
            )
        if dialect == "duckdb":
            return f"COPY (\n{body}\n) TO '{statement.location}' (FORMAT parquet)"
        return (
            f"UNLOAD (\n{body}\n)\nTO '{statement.location}'\nWITH (format = 'PARQUET', compression = 'ZSTD')"
        )

    def payload(self, dialect: str = "athena") -> dict[str, Any]:
        """What the state machine runs: the stages' query strings, and the run tables to drop."""
        return {
            "app_id": self.app_id,
            "day": self.day.isoformat(),
            "run": self.run,
            "database": self.database,
            "stages": [
                [{"name": s.name, "query": self.query(s, dialect)} for s in stage] for stage in self.stages
            ],
            "tables": self.tables,
        }


def day_event_bytes(storage: Storage, app: AppConfig, day: date) -> int:
    """The bytes of the events files a computation of ``day`` reads (the hour partitions of its
    window, each compacted partition once): what decides the engine that computes the day."""
    return sum(
        info.size
        for utc_date, hour in day_window(day, app.timezone).hours
        for info in readable_files(storage, storage.list(events_partition(app.app_id, utc_date, hour)))
    )


def execution_name(plan: DayPlan) -> str:
    """The state machine execution's name: unique per run, readable in the console (80 characters
    of letters, digits, ``-`` and ``_`` at most)."""
    app = re.sub(r"[^A-Za-z0-9_-]", "-", plan.app_id)[:44]
    return f"{app}-{plan.day.isoformat()}-{plan.run}"


def run_prefix(app_id: str, day: date, run: str) -> str:
    return f"{RUNS_PREFIX}app_id={app_id}/dt={day.isoformat()}/run={run}/"


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


# --- the plan ---------------------------------------------------------------------------------


def _timestamp(instant: datetime) -> str:
    """A UTC instant as a plain timestamp literal (the events table's ``timestamp`` is UTC)."""
    return f"TIMESTAMP '{instant.astimezone(UTC).replace(tzinfo=None).isoformat(sep=' ')}'"


def _utc_dates(start: datetime, end: datetime) -> list[str]:
    first, last = start.astimezone(UTC).date(), (end - timedelta(microseconds=1)).astimezone(UTC).date()
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def _deduplicated(app: AppConfig, where: str) -> str:
    """The events of known names matching ``where``, each ``event_id`` once per local calendar day
    (its first-received copy, as the embedded engine keeps it), with that ``day``."""
    columns = ", ".join(sql.DAY_EVENT_COLUMNS)
    known = ", ".join(sql.quote(name) for name in sorted(KNOWN_EVENT_NAMES))
    zone = sql.quote(app.timezone)
    return f"""
        (SELECT {columns}, day FROM (
            SELECT {columns}, day, row_number() OVER (
                PARTITION BY day, event_id ORDER BY received_at, event_time, event_name, user_id
            ) AS copy_number
            FROM (
                SELECT {columns}, CAST(event_time AT TIME ZONE {zone} AS DATE) AS day
                FROM {EVENTS_TABLE}
                WHERE app_id = {sql.quote(app.app_id)} AND {where} AND event_name IN ({known})
            ) AS named
        ) AS copies WHERE copy_number = 1) AS deduplicated
    """


def _literal(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def plan_day(app: AppConfig, day: date, *, bucket: str, database: str, run: str | None = None) -> DayPlan:
    """The statements computing ``day``'s facts and the results of every definition."""
    run = run or new_run_id()
    window = day_window(day, app.timezone)
    prefix = f"s3://{bucket}/{run_prefix(app.app_id, day, run)}"
    utc_dates = _utc_dates(window.start, window.end)
    start, end = _timestamp(window.start), _timestamp(window.end)
    # dt and hour narrow the files Athena reads to the window's hour partitions (partition
    # projection: a day in UTC-5 reads 24 hours of two dt values, not both whole days);
    # event_time decides
    hours: dict[date, list[int]] = {}
    for utc_date, hour in window.hours:
        hours.setdefault(utc_date, []).append(hour)
    partitions = " OR ".join(
        f"(dt = {sql.quote(utc_date.isoformat())} AND hour IN ({', '.join(str(h) for h in listed)}))"
        for utc_date, listed in sorted(hours.items())
    )
    the_day = _deduplicated(app, f"({partitions}) AND event_time >= {start} AND event_time < {end}")
    history = _deduplicated(app, f"dt <= {sql.quote(utc_dates[-1])} AND event_time < {end}")
    columns = ", ".join(sql.DAY_EVENT_COLUMNS)
    d = _literal(day)
    period = Period.day(day)
    cohort_days = ", ".join(_literal(cohort) for cohort in period.cohort_days)

    def table(name: str, select: str) -> Statement:
        return Statement(name, "table", select, f"{prefix}tables/{name}/")

    events_stage = (
        table("day_events", sql.day_events_sql(f"(SELECT {columns} FROM {the_day}) AS day_copies")),
        table("day_page_views", sql.day_page_views_sql(f"(SELECT {columns} FROM {the_day}) AS day_copies")),
        table(
            "launch_days",
            f"""
            SELECT day, user_id, os, region, count(*) AS launches FROM {history}
            WHERE event_name = 'app_launch' AND success
            GROUP BY day, user_id, os, region
            """,
        ),
        table(
            "history_orders",
            f"""
            SELECT {sql.ORDER_COLUMNS} FROM (
                SELECT {sql.ORDER_COLUMNS}, row_number() OVER (
                    PARTITION BY event_name, order_id ORDER BY event_time, event_id
                ) AS order_copy
                FROM {history} WHERE event_name IN ('recharge_order', 'redeem_order')
            ) AS copies WHERE order_copy = 1
            """,
        ),
    )
    derived_stage = (
        table(
            "user_first",
            "SELECT user_id, os, region, min(day) AS first_day FROM launch_days GROUP BY user_id, os, region",
        ),
        table("first_launch", "SELECT user_id, min(day) AS first_day FROM launch_days GROUP BY user_id"),
        table(
            "first_recharge",
            "SELECT user_id, min(day) AS first_day FROM history_orders "
            "WHERE event_name = 'recharge_order' GROUP BY user_id",
        ),
        table("day_standing_orders", f"SELECT * FROM history_orders WHERE day = {d}"),
        table(
            "recharges",
            "SELECT day, user_id, amount FROM history_orders WHERE event_name = 'recharge_order'",
        ),
        table(
            "cohort_launches",
            f"SELECT day, user_id, os, region, launches FROM launch_days WHERE day IN ({cohort_days})",
        ),
    )
    facts_stage = tuple(
        table(name, f"SELECT {d} AS day, * FROM ({query}) AS fact")
        for name, query in stored.build_sql(day).items()
    )
    shared_stages = _staged([table(name, query) for name, query in shared_relations(period).items()])
    results_stage = tuple(
        Statement(f"{definition.name}/{name}", "unload", query, f"{prefix}results/{definition.name}/{name}/")
        for definition in DEFINITIONS
        for name, query in definition.queries(period).items()
    )
    return DayPlan(
        app.app_id,
        day,
        run,
        bucket,
        database,
        (events_stage, derived_stage, facts_stage, *shared_stages, results_stage),
    )


def _staged(statements: list[Statement]) -> list[tuple[Statement, ...]]:
    """``statements`` (in the order they may be built) as stages: one starts a new stage when it
    reads a relation of the stage being filled."""
    from sqlglot import exp, parse_one

    stages: list[list[Statement]] = []
    for statement in statements:
        read = {table.name for table in parse_one(statement.select, read="duckdb").find_all(exp.Table)}
        if not stages or read & {earlier.name for earlier in stages[-1]}:
            stages.append([])
        stages[-1].append(statement)
    return [tuple(stage) for stage in stages]


# --- assembling the results -------------------------------------------------------------------


def _key_of(location: str, bucket: str) -> str:
    match = re.fullmatch(rf"s3://{re.escape(bucket)}/(.+)", location)
    if not match:
        raise ValueError(f"{location} is not in the lake bucket {bucket}")
    return match.group(1)


def _python(value: Any) -> Any:
    """A result value as the embedded engine gives it: timestamps in UTC, records as dicts."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, dict):
        return {key: _python(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_python(item) for item in value]
    return value


def assemble_day(
    storage: Storage, app: AppConfig, plan: DayPlan, generated_at: datetime | None = None
) -> list[str]:
    """Write the facts and the document of ``plan``'s day from its run's results; the keys written.

    The state machine calls this only when every statement has succeeded, so a statement whose
    prefix holds no file returned no rows (Athena writes no file for an empty result); a run whose
    prefix holds nothing at all expired or never ran, and fails. DuckDB reads the files (the
    metrics function's engine) and writes the facts files as the embedded engine writes them.
    """
    # DuckDB and the engine's connection are imported only here (planning needs neither).
    from minidrama.metrics.engine import connect, rows_of

    listing = storage.list(run_prefix(plan.app_id, plan.day, plan.run))
    if not listing:
        raise MissingResults(
            f"run {plan.run} of {plan.app_id} {plan.day} has no results (expired or never ran)"
        )
    with tempfile.TemporaryDirectory(prefix="minidrama-athena-") as scratch:
        workdir = Path(scratch)
        connection = connect()
        try:

            def relation(statement: Statement) -> str | None:
                """The statement's files as one relation (None: no rows)."""
                prefix = _key_of(statement.location, plan.bucket)
                paths = [
                    storage.local_copy(info.key, workdir / "run")
                    for info in sorted(listing, key=lambda info: info.key)
                    if info.key.startswith(prefix) and not info.key.rsplit("/", 1)[-1].startswith(("_", "."))
                ]
                if not paths:
                    return None
                files = ", ".join(sql.quote(str(path)) for path in paths)
                return f"read_parquet([{files}], union_by_name = true)"

            results: dict[tuple[str, str], list[dict[str, Any]]] = {}
            written: dict[str, stored.FactsFile] = {}
            for stage in plan.stages:
                for statement in stage:
                    source = relation(statement)
                    if statement.kind == "unload":
                        definition, name = statement.name.split("/", 1)
                        rows = [] if source is None else rows_of(connection, f"SELECT * FROM {source}")
                        results[(definition, name)] = [
                            {k: _python(v) for k, v in row.items()} for row in rows
                        ]
                    elif statement.name in stored.TABLES:
                        table = statement.name
                        # Athena's plain UTC timestamps become the stored facts' instants (UTC session).
                        select = f"SELECT * FROM {source}"
                        if source is None:
                            columns = ", ".join(
                                f"CAST(NULL AS {stored.SQL_TYPES[kind]}) AS {name}"
                                for name, kind in stored.TABLES[table]
                            )
                            select = f"SELECT {columns} WHERE false"
                        out = workdir / "out" / f"{table}.parquet"
                        out.parent.mkdir(parents=True, exist_ok=True)
                        connection.execute(
                            f"COPY ({stored.typed_sql(table, select)}) TO {sql.quote(str(out))} "
                            "(FORMAT parquet, COMPRESSION zstd)"
                        )
                        body = out.read_bytes()
                        digest = hashlib.sha256(body).hexdigest()
                        written[table] = stored.FactsFile(
                            stored.facts_key(table, app.app_id, plan.day, digest), digest, len(body)
                        )
                        storage.put_bytes(written[table].key, body)
        finally:
            connection.close()
    missing = sorted(set(stored.TABLES) - set(written))
    if missing:
        raise MissingResults(f"run {plan.run} has no facts table {', '.join(missing)}")
    index = stored.FactsIndex.load(storage, app.app_id, app.timezone, strict=False)
    replaced = [entry.key for entry in index.days.get(plan.day, {}).values()]
    index.days[plan.day] = written
    storage.put_bytes(stored.facts_index_key(app.app_id), index.to_bytes(), "application/json")
    storage.delete(sorted(set(replaced) - index.keys()))
    document = build_document(
        app_id=app.app_id,
        period=Period.day(plan.day),
        timezone=app.timezone,
        currency=app.currency,
        generated_at=generated_at or datetime.now(UTC),
        results=results,
        engine="athena",
    )
    from minidrama.metrics import document_bytes

    key = metrics_key(app.app_id, plan.day)
    storage.put_bytes(key, document_bytes(document), "application/json")
    return [key, *sorted(file.key for file in written.values())]


def plan_from_payload(payload: dict[str, Any], app: AppConfig, bucket: str) -> DayPlan:
    """The plan a state machine ran, rebuilt from its input (the same run, app and day)."""
    plan = plan_day(
        app,
        date.fromisoformat(payload["day"]),
        bucket=bucket,
        database=payload["database"],
        run=payload["run"],
    )
    if plan.tables != payload["tables"]:
        raise ValueError(f"run {payload['run']} was planned by another version of the engine")
    return plan
