"""Reading a day's events, and the engine's own state (day facts, rollups), as SQL.

What the metrics are is in :mod:`minidrama.metrics.definitions`; this module prepares what they
and the stored facts (:mod:`minidrama.metrics.facts`) are computed from. The SQL keeps to a
portable subset (CTEs, window functions, CASE, UNION ALL); the engine-specific reader sits behind
:func:`read_events`.

Relations, prepared by the engine for day D:

``day_events``
    D's launches, session ends and orders, deduplicated by ``event_id``; ``DAY_EVENT_COLUMNS``.
``day_page_views(os, region, event_name, pv)``
    D's funnel page views (deduplicated too), counted per os, region and stage.
``day_launches(user_id, os, region, launches)`` and ``day_orders(event_name, order_id, ...)``
    D's *day facts* (:func:`launch_facts_sql`, :func:`order_facts_sql`), which depend on D's
    events alone.
``cohort_launches(day, user_id, os, region, launches)``
    the day facts of launches of the retention and LTV cohort days (D included).
``user_first(user_id, os, region, first_day)`` and ``history_orders(day, event_name, order_id, ...)``
    the *rollup* of all days up to D (:func:`fold_users_sql`, :func:`fold_orders_sql`): the first
    day each user launched with each os and region, and the standing (earliest) copy of every
    order ever; :func:`prepare_sql` derives the rest from them.
"""

from __future__ import annotations

from datetime import date, datetime

from minidrama.schema import AMOUNT_SCALE, EVENT_COLUMNS, FUNNEL_PAGE_VIEWS, KNOWN_EVENT_NAMES

__all__ = [
    "quote",
    "DAY_EVENT_COLUMNS",
    "read_events",
    "empty_events",
    "day_events_sql",
    "launch_facts_sql",
    "order_facts_sql",
    "ORDER_COLUMNS",
    "window_events_sql",
    "repeated_event_ids_sql",
    "dedupe_day_events_sql",
    "day_page_views_sql",
    "fold_users_sql",
    "fold_orders_sql",
    "prepare_sql",
]

# What the metrics need of an event: every column but these, which they never read.
_UNREAD_COLUMNS = frozenset(("original_amount", "currency", "beans", "properties"))
DAY_EVENT_COLUMNS: tuple[str, ...] = tuple(
    name for name, _kind in EVENT_COLUMNS if name not in _UNREAD_COLUMNS
)

_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "bool": "BOOLEAN",
    "int64": "BIGINT",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "decimal": f"DECIMAL(38, {AMOUNT_SCALE})",
}
_COLUMN_TYPES = {name: _DUCKDB_TYPES[kind] for name, kind in EVENT_COLUMNS}


def quote(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


_PAGE_VIEWS = ", ".join(quote(name) for name in FUNNEL_PAGE_VIEWS)


def _literal_date(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def _literal_timestamp(instant: datetime) -> str:
    return f"TIMESTAMP WITH TIME ZONE '{instant.isoformat(sep=' ')}'"


def read_events(paths: list[str]) -> str:
    """A relation over events Parquet files (DuckDB's reader; Athena reads the table instead)."""
    if not paths:
        return empty_events()
    files = ", ".join(quote(path) for path in paths)
    return f"read_parquet([{files}], hive_partitioning = false, union_by_name = true)"


def empty_events() -> str:
    columns = ", ".join(f"CAST(NULL AS {_COLUMN_TYPES[column]}) AS {column}" for column in DAY_EVENT_COLUMNS)
    return f"(SELECT {columns} WHERE 1 = 0)"


def window_events_sql(source: str, start: datetime, end: datetime) -> str:
    """The events of known names in [start, end) as read, copies included."""
    columns = ", ".join(DAY_EVENT_COLUMNS)
    known = ", ".join(quote(name) for name in sorted(KNOWN_EVENT_NAMES))
    return f"""
        (SELECT {columns}
         FROM {source}
         WHERE event_time >= {_literal_timestamp(start)}
           AND event_time < {_literal_timestamp(end)}
           AND event_name IN ({known})) AS window_events
    """


def repeated_event_ids_sql(events: str) -> str:
    """Whether ``event_id`` values may occur more than once in the relation ``events``: how many
    64-bit hashes of them do. Copies share their hash, so 0 means none repeats; a collision (odds
    of about one in a million for a day of 5 million events) only sends the day through the exact
    deduplication, which compares the ids themselves. Hashes take a fifth of the memory of the
    ids (UUIDs) and group faster."""
    repeated = f"SELECT hash(event_id) AS id_hash FROM {events} GROUP BY id_hash HAVING count(*) > 1"
    return f"SELECT count(*) FROM ({repeated}) AS repeated"


def day_events_sql(events: str) -> str:
    """D's launches, session ends and orders (everything but page views) from deduplicated ``events``."""
    return f"SELECT * FROM {events} WHERE event_name NOT IN ({_PAGE_VIEWS})"


def day_page_views_sql(events: str) -> str:
    """D's page views counted per os, region and stage, from deduplicated ``events``.

    Page views are most of a day's events and only ever counted, so they are kept as counts.
    """
    return f"""
        SELECT os, region, event_name, count(*) AS pv
        FROM {events} WHERE event_name IN ({_PAGE_VIEWS})
        GROUP BY os, region, event_name
    """


def dedupe_day_events_sql(table: str) -> str:
    """``table`` with each ``event_id`` once: its first-received copy stands.

    Only the ids that occur more than once go through the window function.
    """
    columns = ", ".join(DAY_EVENT_COLUMNS)
    return f"""
        WITH repeated AS (
            SELECT event_id FROM {table} GROUP BY event_id HAVING count(*) > 1
        )
        SELECT {columns} FROM {table}
        WHERE event_id NOT IN (SELECT event_id FROM repeated)
        UNION ALL
        SELECT {columns}
        FROM (
            SELECT {columns},
                   row_number() OVER (
                       PARTITION BY event_id
                       ORDER BY received_at, event_time, event_name, user_id
                   ) AS copy_number
            FROM {table}
            WHERE event_id IN (SELECT event_id FROM repeated)
        ) AS copies
        WHERE copy_number = 1
    """


def launch_facts_sql() -> str:
    """The day's successful launches per user, os and region."""
    return """
        SELECT user_id, os, region, count(*) AS launches
        FROM day_events
        WHERE event_name = 'app_launch' AND success
        GROUP BY user_id, os, region
    """


def order_facts_sql() -> str:
    """The day's orders, the earliest copy of each ``order_id`` per order event name."""
    return """
        SELECT event_name, order_id, event_id, event_time, user_id, os, region, amount, product_id
        FROM (
            SELECT event_name, order_id, event_id, event_time, user_id, os, region, amount, product_id,
                   row_number() OVER (
                       PARTITION BY event_name, order_id ORDER BY event_time, event_id
                   ) AS copy_number
            FROM day_events
            WHERE event_name IN ('recharge_order', 'redeem_order')
        ) AS copies
        WHERE copy_number = 1
    """


ORDER_COLUMNS = "day, event_name, order_id, event_id, event_time, user_id, os, region, amount, product_id"


def fold_users_sql(sources: list[str]) -> str:
    """The first day of each (user, os, region) over relations of (user_id, os, region, first_day)."""
    union = " UNION ALL ".join(f"SELECT user_id, os, region, first_day FROM {source}" for source in sources)
    return f"""
        SELECT user_id, os, region, min(first_day) AS first_day
        FROM ({union}) AS launches
        GROUP BY user_id, os, region
    """


def fold_orders_sql(sources: list[str]) -> str:
    """The standing copy of each order ("the earliest event_time stands") over order relations."""
    union = " UNION ALL ".join(f"SELECT {ORDER_COLUMNS} FROM {source}" for source in sources)
    return f"""
        SELECT {ORDER_COLUMNS}
        FROM (
            SELECT {ORDER_COLUMNS}, row_number() OVER (
                PARTITION BY event_name, order_id ORDER BY event_time, event_id
            ) AS copy_number
            FROM ({union}) AS copies
        ) AS ranked
        WHERE copy_number = 1
    """


def prepare_sql(day: date) -> tuple[str, ...]:
    """History up to D from the rollup before D and D's own facts: ``user_first``,
    ``history_orders`` (every standing order up to D), ``first_launch``, ``first_recharge``,
    ``day_standing_orders`` (D's orders that stand) and ``recharges`` (every recharge up to D)."""
    d = _literal_date(day)
    return (
        "CREATE OR REPLACE TABLE user_first AS "
        + fold_users_sql(
            ["rollup_users", f"(SELECT user_id, os, region, {d} AS first_day FROM day_launches) AS today"]
        ),
        # Every order in the rollup is from an earlier day, so its copy is earlier than any of D's:
        # D's orders stand unless the rollup has them already.
        f"""
        CREATE OR REPLACE TABLE history_orders AS
        SELECT {ORDER_COLUMNS} FROM rollup_orders
        UNION ALL
        SELECT {d} AS day, today.* FROM day_orders AS today
        WHERE NOT EXISTS (
            SELECT 1 FROM rollup_orders AS earlier
            WHERE earlier.event_name = today.event_name AND earlier.order_id = today.order_id
        )
        """,
        """
        CREATE OR REPLACE TABLE first_launch AS
        SELECT user_id, min(first_day) AS first_day FROM user_first GROUP BY user_id
        """,
        """
        CREATE OR REPLACE TABLE first_recharge AS
        SELECT user_id, min(day) AS first_day FROM history_orders
        WHERE event_name = 'recharge_order' GROUP BY user_id
        """,
        f"CREATE OR REPLACE TABLE day_standing_orders AS SELECT * FROM history_orders WHERE day = {d}",
        # LTV revenue windows reach back to D - 30: every recharge up to D
        """
        CREATE OR REPLACE VIEW recharges AS
        SELECT day, user_id, amount FROM history_orders WHERE event_name = 'recharge_order'
        """,
    )
