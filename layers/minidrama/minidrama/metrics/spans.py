"""Span rollups of the stored facts: a long range's users and entry points without every day's rows.

A *span* is an aligned block of ``2**k`` consecutive days (k = 1 .. :data:`MAX_LEVEL`, 2 to 256
days) that starts on a day whose number since 1970-01-01 is a multiple of its length. For each span
whose days are all computed, the metrics engine stores (``facts/{table}/app_id={app}/first={day}/
days={n}/{digest}.parquet``, public tables like the facts):

``user_spans``
    one row per user, os and region with a ``user_days`` row on a day of the span: ``launches`` and
    ``duration_ms`` summed, ``first_launch_day`` (the least the days carry), the first and the last
    day of the span with a successful launch (``first_launch_in_span``, ``last_launch_in_span``,
    null without one) and the latest launch's time, event id and attributes: those of the row of
    the last launch day.
``entry_spans``
    one row per user, os, region and entry point with launches in the span: ``launches`` summed.

Both are what a range reads of ``user_days`` and ``entry_points`` per user, os, region (and entry
point) folded over the span's days, and fold again: a range is covered by a few spans and single
days (:func:`plan`), the definitions fold those. A span is built from its two halves (two days,
or two spans one level down), so keeping them costs the engine a fold of two files per level.

Each span records its *source*: a SHA-256 over the ``user_days`` and ``entry_points`` files of its
days as the facts index names them. A range reads a span only while that source matches the index
as it is now: a recomputed day (late events) leaves every span holding it stale until the engine
builds it again, and a stale span is never read (the range reads those days instead). Session
matching, retention worked out from launches, and every other table are read per day as before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from minidrama.metrics import facts, sql
from minidrama.metrics.definitions import span_rows_of_days
from minidrama.metrics.facts import Span

__all__ = [
    "SPAN_TABLES",
    "MAX_LEVEL",
    "Span",
    "Plan",
    "plan",
    "span_key",
    "span_source",
    "refresh",
    "user_span_rows",
    "entry_span_rows",
]

MAX_LEVEL = 8  # spans of up to 256 days

SPAN_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "user_spans": (
        ("user_id", "string"),
        ("os", "string"),
        ("region", "string"),
        ("launches", "int64"),
        ("duration_ms", "int64"),
        ("first_launch_day", "date"),
        ("first_launch_in_span", "date"),
        ("last_launch_in_span", "date"),
        ("latest_launch_time", "timestamp"),
        ("latest_launch_event_id", "string"),
        ("gender", "string"),
        ("age_group", "string"),
        ("device_brand", "string"),
        ("device_model", "string"),
        ("tiktok_version", "string"),
    ),
    "entry_spans": (
        ("user_id", "string"),
        ("os", "string"),
        ("region", "string"),
        ("entry_point", "string"),
        ("launches", "int64"),
    ),
}
# the day facts each span table folds
DAY_TABLE = {"user_spans": "user_days", "entry_spans": "entry_points"}
_LATEST = tuple(name for name, _kind in SPAN_TABLES["user_spans"][8:])


def aligned(day: date, days: int) -> bool:
    return (day - facts.EPOCH).days % days == 0


def span_key(table: str, app_id: str, span: Span, digest: str) -> str:
    partition = f"first={span.first.isoformat()}/days={span.days}"
    return f"{facts.table_prefix(table, app_id)}{partition}/{digest[:24]}.parquet"


def span_source(index: facts.FactsIndex, span: Span) -> str | None:
    """The SHA-256 over the day facts ``span`` folds as the index names them now; None when a day
    of it is not computed."""
    digest = hashlib.sha256()
    for day in span.dates:
        tables = index.days.get(day)
        if tables is None:
            return None
        for table in DAY_TABLE.values():
            digest.update(f"{day.isoformat()} {table} {tables[table].sha256}\n".encode())
    return digest.hexdigest()


def _fresh(index: facts.FactsIndex, span: Span) -> bool:
    entry = index.spans.get(span)
    return entry is not None and entry.source == span_source(index, span)


@dataclass(frozen=True)
class Plan:
    """How a range reads its users and entry points: the fresh spans covering most of it, and
    its other days one by one."""

    spans: tuple[Span, ...]
    days: tuple[date, ...]


def plan(index: facts.FactsIndex, first: date, last: date) -> Plan:
    """The fewest fresh spans and single days that cover [first, last] exactly: from each day, the
    longest fresh span that starts there and ends in the range (a span is aligned to its length,
    so a range of n days takes at most about 2 log2 n pieces)."""
    spans: list[Span] = []
    days: list[date] = []
    day = first
    while day <= last:
        for level in range(MAX_LEVEL, 0, -1):
            span = Span(day, 2**level)
            if aligned(day, span.days) and span.last <= last and _fresh(index, span):
                spans.append(span)
                day = span.last + timedelta(days=1)
                break
        else:
            days.append(day)
            day += timedelta(days=1)
    return Plan(tuple(spans), tuple(days))


# --- reading -----------------------------------------------------------------------------------


def _span_columns(table: str) -> str:
    return ", ".join(name for name, _kind in SPAN_TABLES[table])


def _day_files(table: str, paths: list[Path]) -> str:
    files = ", ".join(sql.quote(str(path)) for path in paths)
    return (
        f"(SELECT dt AS day, * FROM read_parquet([{files}], hive_partitioning = true,"
        f" hive_types = {{'dt': DATE}})) AS days"
    )


def _span_files(paths: list[Path]) -> str:
    files = ", ".join(sql.quote(str(path)) for path in paths)
    return f"read_parquet([{files}], hive_partitioning = false)"


def user_span_rows(span_paths: list[Path], day_paths: list[Path]) -> str:
    """Rows of ``user_spans`` from span files and from ``user_days`` files of single days."""
    parts = [f"SELECT {_span_columns('user_spans')} FROM {_span_files(span_paths)}"] if span_paths else []
    if day_paths:
        parts.append(span_rows_of_days(_day_files("user_days", day_paths)))
    return " UNION ALL ".join(parts)


def entry_span_rows(span_paths: list[Path], day_paths: list[Path]) -> str:
    """Rows of ``entry_spans`` from span files and from ``entry_points`` files of single days."""
    columns = _span_columns("entry_spans")
    parts = [f"SELECT {columns} FROM {_span_files(span_paths)}"] if span_paths else []
    if day_paths:
        parts.append(f"SELECT {columns} FROM {_day_files('entry_points', day_paths)}")
    return " UNION ALL ".join(parts)


_ROWS = {"user_spans": user_span_rows, "entry_spans": entry_span_rows}


def fold_sql(table: str, rows: str) -> str:
    """One span's rows of ``table`` from ``rows`` (rows of the table over disjoint days)."""
    if table == "entry_spans":
        return (
            "SELECT user_id, os, region, entry_point, sum(launches) AS launches"
            f" FROM ({rows}) AS parts GROUP BY user_id, os, region, entry_point"
        )
    # the latest launch is that of the last launch day: its row (one per pair and day) carries it
    latest = ", ".join(f"'{name}': {name}" for name in _LATEST)
    return f"""
        SELECT user_id, os, region, launches, duration_ms, first_launch_day, first_launch_in_span,
               last_launch_in_span, {", ".join(f"latest.{name} AS {name}" for name in _LATEST)}
        FROM (
            SELECT user_id, os, region, sum(launches) AS launches, sum(duration_ms) AS duration_ms,
                   min(first_launch_day) AS first_launch_day,
                   min(first_launch_in_span) AS first_launch_in_span,
                   max(last_launch_in_span) AS last_launch_in_span,
                   max_by({{{latest}}}, last_launch_in_span) AS latest
            FROM ({rows}) AS parts GROUP BY user_id, os, region
        ) AS folded
    """


# --- building ----------------------------------------------------------------------------------

Put = Callable[[str, Callable[[str], str]], facts.FactsFile]
Local = Callable[[facts.FactsFile], Path]


def refresh(
    index: facts.FactsIndex, app_id: str, put: Put, local: Local, workers: int = 2
) -> tuple[list[Span], list[str]]:
    """Build every span whose days are all computed and that is missing or stale, level by level
    (each from its two halves), and drop the spans that hold a day no longer computed; returns the
    spans built and the keys of the files the index stopped naming. ``put(query, key_of)`` writes
    a query's rows as a Parquet file and returns it; ``local(file)`` is a verified local copy of an
    indexed file; both are called from ``workers`` threads at once. Checking a span costs a hash
    over its days' entries: only the stale are built."""
    built: list[Span] = []
    garbage: list[str] = []
    for span in [span for span in index.spans if span_source(index, span) is None]:
        garbage.extend(file.key for file in index.spans.pop(span).files.values())
    computed = sorted(index.days)
    if not computed:
        return built, garbage
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for level in range(1, MAX_LEVEL + 1):
            # the spans of a level fold halves of the level below: their files are written side by side
            sources = {span: span_source(index, span) for span in _candidates(computed, 2**level)}
            stale = {
                span: source
                for span, source in sources.items()
                if source is not None and (span not in index.spans or index.spans[span].source != source)
            }
            jobs = [(span, table) for span in stale for table in SPAN_TABLES]
            written = pool.map(
                lambda job: put(
                    _typed(job[1], fold_sql(job[1], _half_rows(index, job[0], job[1], local))),
                    _key(job[1], app_id, job[0]),
                ),
                jobs,
            )
            files: dict[Span, dict[str, facts.FactsFile]] = {span: {} for span in stale}
            for (span, table), file in zip(jobs, written, strict=True):
                files[span][table] = file
            for span, source in stale.items():
                previous = index.spans.get(span)
                if previous is not None:
                    garbage.extend(file.key for file in previous.files.values())
                index.spans[span] = facts.SpanEntry(source, files[span])
                built.append(span)
    return built, garbage


def _typed(table: str, query: str) -> str:
    """``query`` with every column cast to its stored type, in stored order, sorted (a user's rows
    side by side compress to less, and a rebuild of unchanged days is the same file)."""
    columns = ", ".join(
        f"CAST({name} AS {facts.SQL_TYPES[kind]}) AS {name}" for name, kind in SPAN_TABLES[table]
    )
    order = "user_id, os, region" + (", entry_point" if table == "entry_spans" else "")
    return f"(SELECT {columns} FROM ({query}) AS built ORDER BY {order})"


def _key(table: str, app_id: str, span: Span) -> Callable[[str], str]:
    return lambda digest: span_key(table, app_id, span, digest)


def _candidates(computed: list[date], length: int) -> list[Span]:
    """The aligned spans of ``length`` days from the first computed day to the last one."""
    offset = (computed[0] - facts.EPOCH).days % length
    start = computed[0] - timedelta(days=offset)
    spans = []
    while start <= computed[-1]:
        spans.append(Span(start, length))
        start += timedelta(days=length)
    return spans


def _half_rows(index: facts.FactsIndex, span: Span, table: str, local: Local) -> str:
    """The rows of ``table`` over ``span``'s two halves: fresh spans one level down, else days."""
    span_paths: list[Path] = []
    day_paths: list[Path] = []
    for half in span.halves():
        if half.days > 1 and _fresh(index, half):
            span_paths.append(local(index.spans[half].files[table]))
        else:
            day_paths.extend(local(index.days[day][DAY_TABLE[table]]) for day in half.dates)
    return _ROWS[table](span_paths, day_paths)
