"""The stored facts: what a day's computation knows, kept as public, typed, Hive-partitioned Parquet.

Every table lives at ``facts/{table}/app_id={app}/dt={YYYY-MM-DD}/{digest}.parquet`` (``dt`` is the
calendar day in the app's time zone; partition values live in the path, not in the files). The
metrics engine writes all of them for every day it computes and replaces them when the day is
recomputed; range documents (SPEC section 7) are computed from them instead of from raw events.
Which file of a partition is current, and its SHA-256, is in the facts index
(``facts/_index/app_id={app}/index.json``): readers take only the files it names and verify them.

Tables (one row per what; columns in :data:`TABLES`, types in :data:`SQL_TYPES`):

``user_days``
    one row per user, os and region with a successful launch or a session end on the day:
    ``launches`` (successful), ``duration_ms`` (sum of the session ends), ``session_ends``, the
    attributes of the user's latest successful launch in that os and region (null without one),
    and ``first_launch_day``, the user's first successful launch ever (any os and region).
``entry_points``
    one row per user, os, region, entry point and session id of the day's successful launches.
``session_ends``
    one row per ``session_end`` event: os, region, session id, duration.
``event_counts``
    one row per os, region and event name with events on the day (launch attempts, session ends,
    funnel page views, orders), with the launch outcome and timing sums for ``app_launch``.
``orders``
    one row per order standing on the day: the earliest copy of each ``order_id`` (per order event
    name) over all history, with its amount in the reporting currency and ``first_recharge_day``,
    the user's first recharge order ever (null when none up to the day).
``segment_totals``
    one row per segment with launches on any day up to the day: ``total_users`` up to the day.
``retention`` (from the day's document, :data:`DOCUMENT_TABLES`)
    one row per segment and cohort: the day's own cohort (``days_after`` 0: its active and new
    users) and, for each N of 1, 7, 14 and 30, the cohort of D - N (``days_after`` N: how many of
    its active and new members launched on D). ``all`` has a row for every cohort, empty or not.
    ``cohort_source`` names the events of the cohort day and of every day before it as they were
    when the row was computed: a range reads the counts only where each cohort's rows agree on
    it, and otherwise works retention out from the launches of ``user_days``.

A range needs only the facts of its own days: a user active in it carries their first launch,
an order its user's first recharge, and the last day the totals of every segment.

Days are facts of history as known when the day was computed (first launches, first recharges,
standing orders); recomputing a day after late events replaces them, exactly like its document.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

from minidrama.lake import NotFoundError, Storage
from minidrama.metrics.definitions import TOTAL_USERS, record
from minidrama.metrics.exceptions import DamagedFacts
from minidrama.schema import AMOUNT_SCALE, FUNNEL_PAGE_VIEWS

__all__ = [
    "TABLES",
    "DOCUMENT_TABLES",
    "ALL_TABLES",
    "SQL_TYPES",
    "SORTED_BY",
    "FACTS_PREFIX",
    "facts_key",
    "facts_index_key",
    "table_prefix",
    "build_sql",
    "column_list",
    "FactsFile",
    "FactsIndex",
    "verified_path",
]

logger = logging.getLogger(__name__)

FACTS_PREFIX = "facts/"
INDEX_VERSION = 1

# (column, logical type); logical types as in minidrama.schema plus "date".
TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "user_days": (
        ("user_id", "string"),
        ("os", "string"),
        ("region", "string"),
        ("launches", "int64"),
        ("duration_ms", "int64"),
        ("session_ends", "int64"),
        ("latest_launch_time", "timestamp"),
        ("latest_launch_event_id", "string"),
        ("gender", "string"),
        ("age_group", "string"),
        ("device_brand", "string"),
        ("device_model", "string"),
        ("tiktok_version", "string"),
        ("first_launch_day", "date"),
    ),
    "entry_points": (
        ("user_id", "string"),
        ("os", "string"),
        ("region", "string"),
        ("entry_point", "string"),
        ("session_id", "string"),
        ("launches", "int64"),
    ),
    "session_ends": (
        ("os", "string"),
        ("region", "string"),
        ("session_id", "string"),
        ("duration_ms", "int64"),
    ),
    "event_counts": (
        ("os", "string"),
        ("region", "string"),
        ("event_name", "string"),
        ("events", "int64"),
        ("successful_launches", "int64"),
        ("launch_ms_total", "int64"),
        ("timed_launches", "int64"),
    ),
    "orders": (
        ("event_name", "string"),
        ("order_id", "string"),
        ("user_id", "string"),
        ("os", "string"),
        ("region", "string"),
        ("amount", "decimal"),
        ("product_id", "string"),
        ("first_recharge_day", "date"),
    ),
    "segment_totals": (("segment", "string"), ("total_users", "int64")),
}

# Tables the engine writes from the day's results rather than from its relations; an engine that
# does not write them leaves their readers to work the same numbers out from TABLES.
DOCUMENT_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "retention": (
        ("segment", "string"),
        ("cohort_date", "date"),
        ("days_after", "int64"),
        ("active_users", "int64"),
        ("new_users", "int64"),
        ("cohort_source", "string"),
    ),
}
ALL_TABLES = {**TABLES, **DOCUMENT_TABLES}

# The order of the rows in a file the engine writes: like values side by side compress to less
# (a user's rows, durations in order), and a rewrite of unchanged facts is the same file.
SORTED_BY: dict[str, str] = {
    "user_days": "user_id, os, region",
    "entry_points": "user_id, session_id, os, region, entry_point",
    "session_ends": "duration_ms, os, region, session_id",
    "event_counts": "os, region, event_name",
    "orders": "user_id, event_name, order_id",
    "segment_totals": "segment",
    "retention": "segment, cohort_date, days_after",
}

SQL_TYPES = {
    "string": "VARCHAR",
    "bool": "BOOLEAN",
    "int64": "BIGINT",
    "date": "DATE",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "decimal": f"DECIMAL(38, {AMOUNT_SCALE})",
}


def column_list(table: str) -> str:
    """The table's columns, comma separated, in stored order."""
    return ", ".join(name for name, _kind in ALL_TABLES[table])


def table_prefix(table: str, app_id: str) -> str:
    return f"{FACTS_PREFIX}{table}/app_id={app_id}/"


def facts_key(table: str, app_id: str, day: date, digest: str) -> str:
    """The key of one day's file of ``table``; ``digest`` names its content, so a rewrite is a new key."""
    return f"{table_prefix(table, app_id)}dt={day.isoformat()}/{digest[:24]}.parquet"


def facts_index_key(app_id: str) -> str:
    return f"{FACTS_PREFIX}_index/app_id={app_id}/index.json"


def typed_sql(table: str, select: str) -> str:
    """``select`` with every column cast to its stored type, in stored order."""
    columns = ", ".join(f"CAST({name} AS {SQL_TYPES[kind]}) AS {name}" for name, kind in ALL_TABLES[table])
    return f"SELECT {columns} FROM ({select}) AS built"


_LAUNCH_ATTRIBUTES = ("gender", "age_group", "device_brand", "device_model", "tiktok_version")
# A pair's latest launch: the latest time, then the greatest event id (SPEC section 6)
_LAUNCH_ORDER = record({"time": ("event_time", SQL_TYPES["timestamp"]), "event_id": ("event_id", "VARCHAR")})
_LATEST_LAUNCH = record(
    {
        "time": ("event_time", SQL_TYPES["timestamp"]),
        "event_id": ("event_id", "VARCHAR"),
        **{name: (name, "VARCHAR") for name in _LAUNCH_ATTRIBUTES},
    }
)


def build_sql(day: date) -> dict[str, str]:
    """The day's facts from the relations the engine prepares for day D.

    Reads ``day_events`` (D's launches, session ends and orders, deduplicated by event_id),
    ``day_page_views(os, region, event_name, pv)``, ``day_standing_orders`` (D's orders that stand
    over all history), and history up to D: ``user_first(user_id, os, region, first_day)``,
    ``first_launch(user_id, first_day)`` and ``first_recharge(user_id, first_day)``.
    """
    page_views = ", ".join(f"'{name}'" for name in FUNNEL_PAGE_VIEWS)
    order_columns = ", ".join(f"orders.{name}" for name, _kind in TABLES["orders"][:-1])
    return {
        "user_days": typed_sql(
            "user_days",
            f"""
            WITH pairs AS (
                SELECT user_id, os, region,
                       count(*) FILTER (WHERE event_name = 'app_launch') AS launches,
                       sum(duration_ms) FILTER (WHERE event_name = 'session_end') AS duration_ms,
                       count(*) FILTER (WHERE event_name = 'session_end') AS session_ends,
                       max_by({_LATEST_LAUNCH}, {_LAUNCH_ORDER}) FILTER (WHERE event_name = 'app_launch')
                           AS latest
                FROM day_events WHERE (event_name = 'app_launch' AND success) OR event_name = 'session_end'
                GROUP BY user_id, os, region
            ), users AS (
                -- the event id orders launches of one instant, which happen only between the
                -- user's os and region pairs of one day: kept only for a user of several
                SELECT user_id, count(*) FILTER (WHERE launches > 0) AS launch_pairs
                FROM pairs GROUP BY user_id
            )
            SELECT pairs.user_id, pairs.os, pairs.region, pairs.launches,
                   coalesce(pairs.duration_ms, 0) AS duration_ms, pairs.session_ends,
                   pairs.latest.time AS latest_launch_time,
                   CASE WHEN users.launch_pairs > 1 THEN pairs.latest.event_id END AS latest_launch_event_id,
                   {", ".join(f"pairs.latest.{name} AS {name}" for name in _LAUNCH_ATTRIBUTES)},
                   first_launch.first_day AS first_launch_day
            FROM pairs
            JOIN users ON users.user_id = pairs.user_id
            LEFT JOIN first_launch ON first_launch.user_id = pairs.user_id
            """,
        ),
        "entry_points": typed_sql(
            "entry_points",
            """
            SELECT user_id, os, region, entry_point, session_id, count(*) AS launches
            FROM day_events WHERE event_name = 'app_launch' AND success
            GROUP BY user_id, os, region, entry_point, session_id
            """,
        ),
        "session_ends": typed_sql(
            "session_ends",
            "SELECT os, region, session_id, duration_ms FROM day_events WHERE event_name = 'session_end'",
        ),
        "event_counts": typed_sql(
            "event_counts",
            f"""
            SELECT os, region, event_name, count(*) AS events,
                   sum(CASE WHEN success THEN 1 ELSE 0 END) AS successful_launches,
                   sum(CASE WHEN success THEN launch_ms END) AS launch_ms_total,
                   sum(CASE WHEN success AND launch_ms IS NOT NULL THEN 1 ELSE 0 END) AS timed_launches
            FROM day_events WHERE event_name = 'app_launch'
            GROUP BY os, region, event_name
            UNION ALL
            SELECT os, region, event_name, count(*) AS events, NULL, NULL, NULL
            FROM day_events WHERE event_name = 'session_end'
            GROUP BY os, region, event_name
            UNION ALL
            SELECT os, region, event_name, pv AS events, NULL, NULL, NULL
            FROM day_page_views WHERE event_name IN ({page_views})
            UNION ALL
            SELECT os, region, event_name, count(*) AS events, NULL, NULL, NULL
            FROM day_standing_orders
            GROUP BY os, region, event_name
            """,
        ),
        "orders": typed_sql(
            "orders",
            f"""
            SELECT {order_columns}, first_recharge.first_day AS first_recharge_day
            FROM day_standing_orders AS orders
            LEFT JOIN first_recharge ON first_recharge.user_id = orders.user_id
            """,
        ),
        "segment_totals": typed_sql("segment_totals", TOTAL_USERS.stored_sql(day)),
    }


# --- the index: which file of each day is current, and its hash --------------------------------


@dataclass(frozen=True)
class FactsFile:
    key: str
    sha256: str
    size: int


EPOCH = date(1970, 1, 1)  # spans are aligned to their length in days since


class Span(NamedTuple):
    """The aligned span of ``days`` days from ``first`` (a key of :attr:`FactsIndex.spans`)."""

    first: date
    days: int

    @property
    def last(self) -> date:
        return self.first + timedelta(days=self.days - 1)

    @property
    def dates(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range(self.days)]

    def halves(self) -> tuple[Span, Span]:
        half = self.days // 2
        return Span(self.first, half), Span(self.first + timedelta(days=half), half)


@dataclass(frozen=True)
class SpanEntry:
    """A span's files by table, and the SHA-256 over the day facts it was folded from."""

    source: str
    files: dict[str, FactsFile]


@dataclass
class FactsIndex:
    """Every computed day of an app and its facts files, as ``facts/_index/app_id={app}/index.json``.

    A day is in the index exactly when all its tables were written; readers use no other file and
    verify each one against its SHA-256 before reading it.
    """

    app_id: str
    timezone: str
    days: dict[date, dict[str, FactsFile]] = field(default_factory=dict)
    # the span rollups of the days (see minidrama.metrics.spans): a cache, rebuilt when stale
    spans: dict[Span, SpanEntry] = field(default_factory=dict)

    @classmethod
    def load(cls, storage: Storage, app_id: str, timezone: str, *, strict: bool = True) -> FactsIndex:
        """The stored index; empty when there is none or it was written for another time zone.

        An index that cannot be read raises :class:`DamagedFacts`, or with ``strict=False`` (the
        engine, which rewrites it) counts as empty: its days must be computed again.
        """
        key = facts_index_key(app_id)
        try:
            raw = json.loads(storage.get_bytes(key))
            if raw.get("version") != INDEX_VERSION or raw.get("timezone") != timezone:
                return cls(app_id, timezone)  # days of another time zone are other days: recompute them
            days = {
                date.fromisoformat(day): {table: FactsFile(**entry) for table, entry in tables.items()}
                for day, tables in raw["days"].items()
            }
            spans = {
                Span(date.fromisoformat(first), int(length)): SpanEntry(
                    entry["source"], {table: FactsFile(**file) for table, file in entry["files"].items()}
                )
                for first, length, entry in (
                    (*name.split("+"), entry) for name, entry in raw.get("spans", {}).items()
                )
            }
        except NotFoundError:
            return cls(app_id, timezone)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            if strict:
                raise DamagedFacts(
                    f"the facts index {key} cannot be read ({error}); recompute the days"
                ) from error
            logger.warning("facts index unreadable, its days will be recomputed", extra={"key": key})
            return cls(app_id, timezone)
        return cls(app_id, timezone, days, spans)

    def to_bytes(self) -> bytes:
        body = {
            "version": INDEX_VERSION,
            "app_id": self.app_id,
            "timezone": self.timezone,
            "days": {
                day.isoformat(): {table: vars(entry) for table, entry in sorted(tables.items())}
                for day, tables in sorted(self.days.items())
            },
            "spans": {
                f"{span.first.isoformat()}+{span.days}": {
                    "source": entry.source,
                    "files": {table: vars(file) for table, file in sorted(entry.files.items())},
                }
                for span, entry in sorted(self.spans.items())
            },
        }
        return json.dumps(body, indent=1).encode()

    def keys(self) -> set[str]:
        return {entry.key for tables in self.days.values() for entry in tables.values()} | {
            file.key for entry in self.spans.values() for file in entry.files.values()
        }


def verified_path(storage: Storage, entry: FactsFile, workdir: Path) -> Path:
    """A local path of the facts file ``entry`` names (a download under ``workdir`` from S3),
    after checking its size and SHA-256 against the index."""
    try:
        path = storage.local_copy(entry.key, workdir)
        data = path.read_bytes()
    except (NotFoundError, FileNotFoundError) as error:
        raise DamagedFacts(f"facts file {entry.key} is missing; recompute its day") from error
    if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
        raise DamagedFacts(f"facts file {entry.key} does not match its recorded SHA-256; recompute its day")
    return path
