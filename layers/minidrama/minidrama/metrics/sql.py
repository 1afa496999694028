"""Every metric of the daily document, written once as SQL.

The SQL keeps to a portable subset (CTEs, window functions, CASE, UNION ALL, no QUALIFY, no
GROUP BY ALL, no engine-specific functions scattered around) so that the same definitions can run
on Athena over the same Parquet later. The two engine-specific pieces sit behind one small
function each: :func:`median` and :func:`read_events`.

The queries read these relations, prepared by the engine for day D:

``day_events``
    D's launches, session ends and orders, deduplicated by ``event_id``; ``DAY_EVENT_COLUMNS``.
``day_page_views(os, region, event_name, pv)``
    D's funnel page views (deduplicated too), counted per os, region and stage.
``day_launches(user_id, os, region, launches)`` and ``day_orders(event_name, order_id, ...)``
    D's *day facts* (:func:`launch_facts_sql`, :func:`order_facts_sql`).
``cohort_launches(day, user_id, os, region, launches)``
    the day facts of launches of the retention and LTV cohort days (D included).
``user_first(user_id, os, region, first_day)`` and ``orders(day, event_name, order_id, ...)``
    the *rollup* of all days up to D (:func:`fold_users_sql`, :func:`fold_orders_sql`): the first
    day each user launched with each os and region, and the standing (earliest) copy of every
    order ever.

Segments: an event (or a per-user row carrying os and region) belongs to ``all``, to
``os:<os>`` and to ``region:<region>``; :func:`by_segment` expands rows into those three.
"""

from __future__ import annotations

from datetime import date, datetime

from minidrama.schema import AMOUNT_SCALE, EVENT_COLUMNS, FUNNEL_PAGE_VIEWS, KNOWN_EVENT_NAMES

__all__ = [
    "DAY_EVENT_COLUMNS",
    "median",
    "by_segment",
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
    "metric_queries",
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


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_PAGE_VIEWS = ", ".join(_quote(name) for name in FUNNEL_PAGE_VIEWS)


def median(expression: str) -> str:
    """Exact median (the mean of the two middle values for an even count; NULL for none).

    DuckDB's ``median`` is exact and averages the middle pair for numeric input. On Athena this
    becomes a window-function form (row_number and count over the partition); keep every median
    behind this function so that only it changes.
    """
    return f"median(CAST({expression} AS DOUBLE))"


def _literal_date(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def _literal_timestamp(instant: datetime) -> str:
    return f"TIMESTAMP WITH TIME ZONE '{instant.isoformat(sep=' ')}'"


def by_segment(relation: str, columns: str) -> str:
    """Rows of ``relation`` (which has ``os`` and ``region``) once per segment they belong to."""
    return (
        f"(SELECT 'all' AS segment, {columns} FROM {relation}"
        f" UNION ALL SELECT 'os:' || os AS segment, {columns} FROM {relation}"
        f" UNION ALL SELECT 'region:' || region AS segment, {columns} FROM {relation})"
    )


def read_events(paths: list[str]) -> str:
    """A relation over events Parquet files (DuckDB's reader; Athena reads the table instead)."""
    if not paths:
        return empty_events()
    files = ", ".join(_quote(path) for path in paths)
    return f"read_parquet([{files}], hive_partitioning = false, union_by_name = true)"


def empty_events() -> str:
    columns = ", ".join(f"CAST(NULL AS {_COLUMN_TYPES[column]}) AS {column}" for column in DAY_EVENT_COLUMNS)
    return f"(SELECT {columns} WHERE 1 = 0)"


def window_events_sql(source: str, start: datetime, end: datetime) -> str:
    """The events of known names in [start, end) as read, copies included."""
    columns = ", ".join(DAY_EVENT_COLUMNS)
    known = ", ".join(_quote(name) for name in sorted(KNOWN_EVENT_NAMES))
    return f"""
        (SELECT {columns}
         FROM {source}
         WHERE event_time >= {_literal_timestamp(start)}
           AND event_time < {_literal_timestamp(end)}
           AND event_name IN ({known})) AS window_events
    """


def repeated_event_ids_sql(events: str) -> str:
    """How many ``event_id`` values occur more than once in the relation ``events``."""
    repeated = f"SELECT event_id FROM {events} GROUP BY event_id HAVING count(*) > 1"
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
    """Relations every metric query may use, from the rollup before D and D's own facts."""
    d = _literal_date(day)
    return (
        "CREATE OR REPLACE TABLE user_first AS "
        + fold_users_sql(
            ["rollup_users", f"(SELECT user_id, os, region, {d} AS first_day FROM day_launches) AS today"]
        ),
        # Every order in the rollup is from an earlier day, so its copy is earlier than any of D's:
        # D's orders stand unless the rollup has them already.
        f"""
        CREATE OR REPLACE TABLE orders AS
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
        SELECT user_id, min(day) AS first_day FROM orders WHERE event_name = 'recharge_order' GROUP BY user_id
        """,
        # D's orders with their user's payer group (none for a user who never recharged up to D)
        f"""
        CREATE OR REPLACE TABLE payer_orders AS
        SELECT orders.*,
               CASE WHEN first_recharge.first_day = {d} THEN 'new_payers'
                    WHEN first_recharge.first_day < {d} THEN 'returning_payers' END AS payer_group
        FROM orders
        LEFT JOIN first_recharge ON first_recharge.user_id = orders.user_id
        WHERE orders.day = {d}
        """,
    )


def metric_queries(day: date, retention_cohorts: list[date], ltv_cohorts: list[date]) -> dict[str, str]:
    """Named queries; each returns rows keyed by ``segment`` that the document assembler reads."""
    d = _literal_date(day)
    retention_days = ", ".join(_literal_date(cohort) for cohort in retention_cohorts)
    ltv_days = ", ".join(_literal_date(cohort) for cohort in ltv_cohorts)
    launch_attributes = (
        "user_id, region, event_time, event_id, is_new,"
        " gender, age_group, device_brand, device_model, tiktok_version"
    )
    launch_totals = "launches, successful_launches, launch_ms_total, timed_launches"
    return {
        "segments": f"""
            WITH pairs AS (
                -- after both de-duplications: a later copy of an order names no segment
                SELECT os, region FROM day_events WHERE event_name NOT IN ('recharge_order', 'redeem_order')
                UNION SELECT os, region FROM day_page_views
                UNION SELECT os, region FROM payer_orders
            )
            SELECT 'all' AS segment
            UNION SELECT segment FROM {by_segment("pairs", "os")} AS expanded
        """,
        "total_users": f"""
            SELECT segment, count(DISTINCT user_id) AS total_users
            FROM {by_segment("user_first", "user_id")} AS expanded
            GROUP BY segment
        """,
        "users": f"""
            WITH session_rows AS (
                SELECT user_id, os, region, sum(duration_ms) AS duration
                FROM day_events WHERE event_name = 'session_end'
                GROUP BY user_id, os, region
            ), active AS (
                SELECT segment, user_id, sum(launches) AS launches
                FROM {by_segment("day_launches", "user_id, launches")} AS expanded
                GROUP BY segment, user_id
            ), durations AS (
                SELECT segment, user_id, sum(duration) AS duration
                FROM {by_segment("session_rows", "user_id, duration")} AS expanded
                GROUP BY segment, user_id
            ), user_day AS (
                SELECT active.segment, active.user_id, active.launches,
                       coalesce(durations.duration, 0) AS duration,
                       CASE WHEN first_launch.first_day = {d} THEN 1 ELSE 0 END AS is_new
                FROM active
                JOIN first_launch ON first_launch.user_id = active.user_id
                LEFT JOIN durations
                  ON durations.segment = active.segment AND durations.user_id = active.user_id
            )
            SELECT segment,
                   count(*) AS active_users,
                   sum(is_new) AS new_users,
                   sum(CASE WHEN launches >= 2 THEN 1 ELSE 0 END) AS repeat_users,
                   sum(launches) AS visit_count,
                   {median("duration")} AS median_duration_per_user_ms,
                   sum(CASE WHEN duration > 0 THEN 1 ELSE 0 END) AS effectively_active_users
            FROM user_day
            GROUP BY segment
        """,
        "sessions": f"""
            WITH session_rows AS (
                SELECT os, region, duration_ms FROM day_events WHERE event_name = 'session_end'
            )
            SELECT segment, {median("duration_ms")} AS median_duration_per_session_ms
            FROM {by_segment("session_rows", "duration_ms")} AS expanded
            GROUP BY segment
        """,
        "retention": f"""
            WITH returned AS (
                SELECT DISTINCT user_id FROM day_launches
            ), cohort_rows AS (
                -- flags per user and cohort day first, so the joins see each launch row once
                SELECT cohort_launches.day, cohort_launches.user_id,
                       cohort_launches.os, cohort_launches.region,
                       CASE WHEN first_launch.first_day = cohort_launches.day THEN 1 ELSE 0 END AS is_new,
                       CASE WHEN returned.user_id IS NOT NULL THEN 1 ELSE 0 END AS is_retained
                FROM cohort_launches
                JOIN first_launch ON first_launch.user_id = cohort_launches.user_id
                LEFT JOIN returned ON returned.user_id = cohort_launches.user_id
                WHERE cohort_launches.day IN ({retention_days})
            ), cohort_members AS (
                SELECT DISTINCT segment, day AS cohort_date, user_id, is_new, is_retained
                FROM {by_segment("cohort_rows", "day, user_id, is_new, is_retained")} AS expanded
            )
            SELECT segment, cohort_date,
                   count(*) AS active_cohort_size,
                   sum(is_retained) AS active_retained,
                   sum(is_new) AS new_cohort_size,
                   sum(is_new * is_retained) AS new_retained
            FROM cohort_members
            GROUP BY segment, cohort_date
        """,
        "ltv": f"""
            WITH cohort_rows AS (
                SELECT cohort_launches.day, cohort_launches.user_id,
                       cohort_launches.os, cohort_launches.region
                FROM cohort_launches
                JOIN first_launch
                  ON first_launch.user_id = cohort_launches.user_id
                 AND first_launch.first_day = cohort_launches.day
                WHERE cohort_launches.day IN ({ltv_days})
            ), cohort_members AS (
                SELECT DISTINCT segment, day AS cohort_date, user_id
                FROM {by_segment("cohort_rows", "day, user_id")} AS expanded
            ), revenue AS (
                SELECT cohort_members.segment, cohort_members.cohort_date, sum(orders.amount) AS revenue
                FROM cohort_members
                JOIN orders
                  ON orders.user_id = cohort_members.user_id
                 AND orders.event_name = 'recharge_order'
                 AND orders.day >= cohort_members.cohort_date
                 AND orders.day <= {d}
                GROUP BY cohort_members.segment, cohort_members.cohort_date
            ), sizes AS (
                SELECT segment, cohort_date, count(*) AS cohort_size
                FROM cohort_members GROUP BY segment, cohort_date
            )
            SELECT sizes.segment, sizes.cohort_date, sizes.cohort_size, revenue.revenue
            FROM sizes
            LEFT JOIN revenue
              ON revenue.segment = sizes.segment AND revenue.cohort_date = sizes.cohort_date
        """,
        "attributes": f"""
            WITH launches AS (
                SELECT day_events.user_id, os, region, event_time, event_id, gender, age_group,
                       device_brand, device_model, tiktok_version,
                       CASE WHEN first_launch.first_day = {d} THEN 1 ELSE 0 END AS is_new
                FROM day_events JOIN first_launch ON first_launch.user_id = day_events.user_id
                WHERE event_name = 'app_launch' AND success
            ), ranked AS (
                SELECT expanded.*, row_number() OVER (
                    PARTITION BY segment, user_id ORDER BY event_time DESC, event_id DESC
                ) AS recency
                FROM {by_segment("launches", launch_attributes)} AS expanded
            ), latest AS (
                SELECT * FROM ranked WHERE recency = 1
            ), attribute_values AS (
                SELECT segment, is_new, 'gender' AS attribute, gender AS value FROM latest
                UNION ALL SELECT segment, is_new, 'age_group', age_group FROM latest
                UNION ALL SELECT segment, is_new, 'region', region FROM latest
                UNION ALL SELECT segment, is_new, 'brand', device_brand FROM latest
                UNION ALL SELECT segment, is_new, 'model', device_model FROM latest
                UNION ALL SELECT segment, is_new, 'tiktok_version', tiktok_version FROM latest
            )
            SELECT segment, attribute, coalesce(value, 'unknown') AS value,
                   count(*) AS active_users, sum(is_new) AS new_users
            FROM attribute_values
            GROUP BY segment, attribute, coalesce(value, 'unknown')
        """,
        "entry_points": f"""
            WITH launches AS (
                SELECT user_id, os, region, entry_point, session_id
                FROM day_events WHERE event_name = 'app_launch' AND success
            ), segment_launches AS (
                SELECT expanded.*,
                       CASE WHEN first_launch.first_day = {d} THEN expanded.user_id END AS new_user_id
                FROM {by_segment("launches", "user_id, entry_point")} AS expanded
                JOIN first_launch ON first_launch.user_id = expanded.user_id
            ), launch_counts AS (
                SELECT segment, entry_point,
                       count(DISTINCT user_id) AS active_users,
                       count(DISTINCT new_user_id) AS new_users,
                       count(*) AS launch_sessions
                FROM segment_launches
                GROUP BY segment, entry_point
            ), entry_sessions AS (
                SELECT DISTINCT entry_point, session_id FROM launches
            ), session_rows AS (
                SELECT os, region, session_id, duration_ms FROM day_events WHERE event_name = 'session_end'
            ), session_durations AS (
                SELECT expanded.segment, entry_sessions.entry_point,
                       avg(CAST(expanded.duration_ms AS DOUBLE)) AS average_duration_per_session_ms
                FROM {by_segment("session_rows", "session_id, duration_ms")} AS expanded
                JOIN entry_sessions ON entry_sessions.session_id = expanded.session_id
                GROUP BY expanded.segment, entry_sessions.entry_point
            )
            SELECT launch_counts.segment, launch_counts.entry_point, launch_counts.active_users,
                   launch_counts.new_users, launch_counts.launch_sessions,
                   session_durations.average_duration_per_session_ms
            FROM launch_counts
            LEFT JOIN session_durations
              ON session_durations.segment = launch_counts.segment
             AND session_durations.entry_point = launch_counts.entry_point
        """,
        "funnel": f"""
            WITH stage_rows AS (
                SELECT os, region, event_name, pv FROM day_page_views
                UNION ALL
                SELECT os, region, event_name, count(*) AS pv
                FROM payer_orders
                GROUP BY os, region, event_name
            )
            SELECT segment, event_name AS stage, sum(pv) AS pv
            FROM {by_segment("stage_rows", "event_name, pv")} AS expanded
            GROUP BY segment, event_name
        """,
        "payers": f"""
            WITH recharge_rows AS (
                SELECT user_id, os, region FROM payer_orders WHERE event_name = 'recharge_order'
            ), per_user AS (
                SELECT segment, user_id, count(*) AS recharge_orders
                FROM {by_segment("recharge_rows", "user_id")} AS expanded
                GROUP BY segment, user_id
            )
            SELECT segment, count(*) AS paying_users,
                   sum(CASE WHEN recharge_orders >= 2 THEN 1 ELSE 0 END) AS repeat_paying_users
            FROM per_user
            GROUP BY segment
        """,
        "orders": f"""
            WITH grouped AS (
                SELECT os, region, 'all' AS payer_group, event_name, amount FROM payer_orders
                UNION ALL
                SELECT os, region, payer_group, event_name, amount FROM payer_orders
                WHERE payer_group IS NOT NULL
            )
            SELECT segment, payer_group,
                   sum(CASE WHEN event_name = 'recharge_order' THEN amount END) AS gmv,
                   sum(CASE WHEN event_name = 'recharge_order' THEN 1 ELSE 0 END) AS recharge_orders,
                   sum(CASE WHEN event_name = 'redeem_order' THEN 1 ELSE 0 END) AS redeem_orders
            FROM {by_segment("grouped", "payer_group, event_name, amount")} AS expanded
            GROUP BY segment, payer_group
        """,
        "top_products": f"""
            WITH redeems AS (
                SELECT os, region, payer_group, product_id FROM payer_orders WHERE event_name = 'redeem_order'
            ), grouped AS (
                SELECT os, region, 'all' AS payer_group, product_id FROM redeems
                UNION ALL
                SELECT os, region, payer_group, product_id FROM redeems WHERE payer_group IS NOT NULL
            ), counted AS (
                SELECT segment, payer_group, product_id, count(*) AS orders
                FROM {by_segment("grouped", "payer_group, product_id")} AS expanded
                GROUP BY segment, payer_group, product_id
            ), ranked AS (
                SELECT counted.*, row_number() OVER (
                    PARTITION BY segment, payer_group ORDER BY orders DESC, product_id
                ) AS position
                FROM counted
            )
            SELECT segment, payer_group, product_id, orders, position
            FROM ranked WHERE position <= 10
        """,
        "performance": f"""
            WITH launch_rows AS (
                SELECT os, region,
                       count(*) AS launches,
                       sum(CASE WHEN success THEN 1 ELSE 0 END) AS successful_launches,
                       sum(CASE WHEN success THEN launch_ms END) AS launch_ms_total,
                       sum(CASE WHEN success AND launch_ms IS NOT NULL THEN 1 ELSE 0 END) AS timed_launches
                FROM day_events WHERE event_name = 'app_launch'
                GROUP BY os, region
            )
            SELECT segment, sum(launches) AS launches, sum(successful_launches) AS successful_launches,
                   sum(launch_ms_total) AS launch_ms_total, sum(timed_launches) AS timed_launches
            FROM {by_segment("launch_rows", launch_totals)} AS expanded
            GROUP BY segment
        """,
    }
