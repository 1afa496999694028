"""Range documents (SPEC section 7) from the stored facts of the range's days.

A range document is built from the facts files that the facts index names for each day of the
range, each verified against its SHA-256 first, and never from partial state: a day of the range
that was never computed is an error naming it. No raw event is read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from minidrama.config import AppConfig
from minidrama.lake import LocalStorage, Storage
from minidrama.metrics import facts, spans, sql
from minidrama.metrics.document import build_document
from minidrama.metrics.engine import connect, run_definitions
from minidrama.metrics.exceptions import MissingDays, UnknownSegment
from minidrama.metrics.period import Period

__all__ = ["query_range", "select_segments"]

# What the definitions read beyond the facts tables and the relations they derive themselves
# (``first_launch`` among them: :func:`minidrama.metrics.definitions.shared_relations`), from the
# range's own facts: an order carries its user's first recharge ever (see minidrama.metrics.facts).
_DERIVED = (
    """
    CREATE TABLE first_recharge AS
    SELECT user_id, min(first_recharge_day) AS first_day FROM orders
    WHERE first_recharge_day IS NOT NULL GROUP BY user_id
    """,
    "CREATE VIEW recharges AS SELECT day, user_id, amount FROM orders WHERE event_name = 'recharge_order'",
)


def query_range(
    storage: Storage,
    app: AppConfig,
    first: date,
    last: date,
    segments: Sequence[str] | None = None,
    generated_at: datetime | None = None,
    *,
    index: facts.FactsIndex | None = None,
) -> dict[str, Any]:
    """The range document of [``first``, ``last``] (calendar days in the app's time zone).

    ``index`` is the app's facts index when the caller has just loaded it (else it is loaded).

    Raises :class:`InvalidRange` when ``first`` is after ``last``, :class:`MissingDays` when a day
    of the range was never computed, :class:`UnknownSegment` for a requested segment that has no
    events in the range, :class:`~minidrama.metrics.exceptions.DamagedFacts` for a facts file that
    does not match its hash.
    """
    period = Period.range(first, last)
    if index is None:
        index = facts.FactsIndex.load(storage, app.app_id, app.timezone)
    missing = [day for day in period.days if day not in index.days]
    if missing:
        raise MissingDays(app.app_id, missing)
    workdir = Path(tempfile.mkdtemp(prefix="minidrama-range-"))
    connection = connect()
    # No result depends on the order of rows (every document key is an aggregate), and loading
    # the facts in any order costs a third less.
    connection.execute("SET preserve_insertion_order = false")
    try:
        rollup = _rollup_plan(index, period)
        paths = _verified_paths(storage, _facts_entries(index, period, rollup), workdir)
        _bind_facts(connection, paths, rolled_up=rollup is not None)
        for statement in _DERIVED:
            connection.execute(statement)
        period = _with_stored_retention(connection, period, list(paths))
        if rollup is not None:
            period = _bind_users(connection, storage, index, period, rollup, paths, workdir)
        results = run_definitions(connection, period)
    finally:
        connection.close()
        shutil.rmtree(workdir, ignore_errors=True)
    document = build_document(
        app_id=app.app_id,
        period=period,
        timezone=app.timezone,
        currency=app.currency,
        generated_at=generated_at or datetime.now(UTC),
        results=results,
    )
    return select_segments(document, segments) if segments else document


# Facts with a row per user and day or per session, scanned in place by the few queries that read
# them (``user_days`` by the shared ``user_combos``, ``entry_points`` by entry points,
# ``session_ends`` by sessions and entry points): a table of them would be most of a long range's
# memory (a year of 50,000 users a day: 21 M session ends, 1 GB) and costs as much to load as the
# scans; the others are small, read by several queries, and loaded once.
_SCANNED_IN_PLACE = {"user_days", "entry_points", "session_ends"}
# Stored columns the definitions never read (kept for other readers of the facts): not decoding
# them saves time on every range.
_UNREAD = {"user_days": {"session_ends"}, "orders": {"order_id"}}


def _facts_tables(index: facts.FactsIndex, period: Period) -> list[str]:
    """The facts tables a range reads: every one of ``TABLES``, and retention's stored counts
    where every day has them (an engine that writes none leaves retention to be worked out from
    the launches)."""
    tables = list(facts.TABLES)
    if all("retention" in index.days[day] for day in period.days):
        tables.append("retention")
    return tables


def _rollup_plan(index: facts.FactsIndex, period: Period) -> spans.Plan | None:
    """The spans and single days a range reads its users and entry points from (see
    :mod:`minidrama.metrics.spans`), or None to read every day: when no fresh span fits in the
    range, or its days do not all have stored retention counts (working retention out needs each
    day's launches)."""
    if "retention" not in _facts_tables(index, period):
        return None
    plan = spans.plan(index, period.first, period.last)
    return plan if plan.spans else None


def _facts_entries(
    index: facts.FactsIndex, period: Period, rollup: spans.Plan | None = None
) -> dict[str, list[facts.FactsFile]]:
    """The facts files a range reads, by table: each of its days' (the last day's alone for the
    segment totals, which are totals up to the day); with a ``rollup`` plan, ``user_days`` of its
    single days only and the files of its spans (``user_spans``, ``entry_spans``)."""
    entries = {
        table: [
            index.days[day][table] for day in ([period.last] if table == "segment_totals" else period.days)
        ]
        for table in _facts_tables(index, period)
    }
    if rollup is not None:
        entries["user_days"] = [index.days[day]["user_days"] for day in rollup.days]
        for table in spans.SPAN_TABLES:
            entries[table] = [index.spans[span].files[table] for span in rollup.spans]
    return entries


def _bind_facts(
    connection: duckdb.DuckDBPyConnection, paths: dict[str, list[Path]], *, rolled_up: bool
) -> None:
    """Each facts table of ``paths`` as a relation of its name (the span files and, when
    ``rolled_up``, the single days' ``user_days`` are bound by :func:`_bind_users`)."""
    for table, table_paths in paths.items():
        if table in spans.SPAN_TABLES or (rolled_up and table == "user_days"):
            continue
        kind = "VIEW" if table in _SCANNED_IN_PLACE else "TABLE"
        connection.execute(f"CREATE {kind} {table} AS {_read_facts(table, table_paths)}")


def _bind_users(
    connection: duckdb.DuckDBPyConnection,
    storage: Storage,
    index: facts.FactsIndex,
    period: Period,
    rollup: spans.Plan,
    paths: dict[str, list[Path]],
    workdir: Path,
) -> Period:
    """Bind a rolled-up range's users and entry points: ``user_spans`` and ``entry_spans`` over
    its spans and single days, when its stored retention holds; otherwise (a day recomputed
    without the days that look back at it) ``user_days`` of every day, read one by one."""
    if not period.stored_retention:
        every_day = {"user_days": [index.days[day]["user_days"] for day in period.days]}
        _bind_facts(connection, _verified_paths(storage, every_day, workdir), rolled_up=False)
        return period
    entry_points = dict(zip(period.days, paths["entry_points"], strict=True))
    rows = {
        "user_spans": spans.user_span_rows(paths["user_spans"], paths["user_days"]),
        "entry_spans": spans.entry_span_rows(
            paths["entry_spans"], [entry_points[day] for day in rollup.days]
        ),
    }
    for table, query in rows.items():
        connection.execute(f"CREATE VIEW {table} AS {query}")
    return replace(period, spans=True)


def _verified_paths(
    storage: Storage, entries: dict[str, list[facts.FactsFile]], workdir: Path
) -> dict[str, list[Path]]:
    """Local paths of the files ``entries`` name, by table, each checked against its SHA-256."""
    # Downloads from S3 overlap; a local lake is read in place, its files hashed on every core
    # (hashlib releases the GIL: the year's 2,191 warm files, 510 MB, 0.8-1.2 s -> 0.56 s).
    workers = (os.cpu_count() or 1) if isinstance(storage, LocalStorage) else 16
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return {
            table: list(pool.map(lambda entry: facts.verified_path(storage, entry, workdir), listed))
            for table, listed in entries.items()
        }


def _with_stored_retention(
    connection: duckdb.DuckDBPyConnection, period: Period, tables: list[str]
) -> Period:
    """``period``, reading retention from its stored counts when they were loaded and hold."""
    if "retention" in tables and _stored_retention_holds(connection, period):
        return replace(period, stored_retention=True)
    return period


def _stored_retention_holds(connection: duckdb.DuckDBPyConnection, period: Period) -> bool:
    """Whether the range's stored retention counts are those of one history: every day has its
    own cohort's row, and each (cohort day, N) the range measures has its row on day C + N,
    computed from the same events up to C as the cohort's own (``cohort_source``). Otherwise a
    day was recomputed (late events) without the days that look back at it, and retention is
    worked out from the launches instead."""
    [(own_rows, agreeing_returns)] = connection.execute(
        f"""
        SELECT (SELECT count(*) FROM retention WHERE segment = 'all' AND days_after = 0),
               (SELECT count(*)
                FROM retention AS back
                JOIN retention AS own
                  ON own.segment = 'all' AND own.days_after = 0 AND own.cohort_date = back.cohort_date
                 AND own.cohort_source = back.cohort_source
                WHERE back.segment = 'all' AND back.days_after > 0
                  AND back.cohort_date >= DATE '{period.first.isoformat()}')
        """
    ).fetchall()
    return own_rows == len(period.days) and agreeing_returns == len(period.retention_pairs)


def _read_facts(table: str, paths: list[Path]) -> str:
    files = ", ".join(sql.quote(str(path)) for path in paths)
    columns = ", ".join(name for name, _kind in facts.ALL_TABLES[table] if name not in _UNREAD.get(table, ()))
    return (
        f"SELECT dt AS day, {columns}"
        f" FROM read_parquet([{files}], hive_partitioning = true, hive_types = {{'dt': DATE}})"
    )


def select_segments(document: dict[str, Any], segments: Sequence[str]) -> dict[str, Any]:
    """``document`` with only ``segments`` (in the document's order); an absent one is an error."""
    unknown = [segment for segment in segments if segment not in document["segments"]]
    if unknown:
        span = f"{document['from']}..{document['to']}" if "from" in document else document.get("date", "")
        raise UnknownSegment(
            f"segment {unknown[0]!r} has no events in {span}; segments: {', '.join(document['segments'])}"
        )
    return {
        **document,
        "segments": {name: value for name, value in document["segments"].items() if name in segments},
    }
