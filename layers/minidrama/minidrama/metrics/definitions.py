"""Every metric, defined once: its SQL and the document keys it fills, for a day and for a range.

Each definition is one class: :meth:`Definition.queries` gives its SQL for a :class:`Period` (the
portable subset: CTEs, window functions, CASE, UNION ALL, VALUES, an aggregate's FILTER,
``max_by``, ``row``; the engine-specific median, arrays and records sit behind :func:`median`,
:func:`collect`, :func:`flatten`, :func:`unnest`, :func:`contains` and :func:`record`), and
:meth:`Definition.fill` turns that SQL's rows for one segment into the document keys it owns. A
day's document (SPEC section 6) and a range's (section 7) run the same SQL; only the period's
parameters differ, and retention and LTV have a day form and a range form.

The SQL reads these relations, which the engine binds to one day's facts (the daily computation)
or to the stored facts of a range (see :mod:`minidrama.metrics.facts` for their meaning); each
fact relation has a ``day`` column:

``user_days``, ``entry_points``, ``session_ends``, ``event_counts``, ``orders``
    the facts of the period's days.
``segment_totals(segment, total_users)``
    the total users of every segment up to the last day.
``first_launch(user_id, first_day)``
    the first successful launch ever of (at least) every user with a launch on a cohort day.
``first_recharge(user_id, first_day)``
    the first recharge order ever of (at least) every user with an order in the period, up to the
    last day.
``cohort_launches(day, user_id, os, region)``
    successful launches (one row per user, os and region) of the cohort days (:attr:`Period.cohort_days`).
``recharges(day, user_id, amount)``
    recharge orders of the days LTV revenue windows cover.

Before the queries, :func:`shared_relations` builds what several definitions read, once per
period: ``user_combos`` and ``cohort_combos`` (one row per user, os and region), ``launch_users``
(one per user with a launch) and, for a range, ``first_launch`` (see there).

Segments: an event (or a row carrying os and region) belongs to ``all``, to ``os:<os>`` and to
``region:<region>``; :func:`by_segment` expands rows into those three. Counting distinct users per
segment is what a range's cost is made of, so :func:`users_by_segment` and
:func:`per_user_by_segment` count a user of one os and one region (nearly every user) without
grouping their rows per segment, and deduplicate only the others.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from minidrama.metrics.period import LTV_DAYS, RETENTION_DAYS, Period
from minidrama.schema import FUNNEL_PAGE_VIEWS

__all__ = [
    "Definition",
    "DEFINITIONS",
    "SegmentResults",
    "by_segment",
    "median",
    "money",
    "ratio",
    "segment_order",
]

Row = Mapping[str, Any]
Fragment = dict[str, Any]  # module -> its keys (or its whole value)

ORDER_TYPES = {"recharge": "recharge_order", "redeem": "redeem_order"}
PAYER_GROUPS = ("all", "new_payers", "returning_payers")
PROFILE_ATTRIBUTES = {"gender": "gender", "age_group": "age_group", "region": "region"}
DEVICE_ATTRIBUTES = {"brand": "device_brand", "model": "device_model", "tiktok_version": "tiktok_version"}
_CENT = Decimal("0.01")

# --- SQL helpers ------------------------------------------------------------------------------


def median(expression: str) -> str:
    """Exact median (the mean of the two middle values for an even count; NULL for none).

    DuckDB's ``median`` is exact and averages the middle pair for numeric input. Other engines
    need a window-function form; keep every median behind this function so that only it changes.
    """
    return f"median(CAST({expression} AS DOUBLE))"


def collect(expression: str) -> str:
    """The array of ``expression``'s values over a group (``array_agg`` in DuckDB and Athena alike)."""
    return f"array_agg({expression})"


def flatten(arrays: str) -> str:
    """The elements of an array of arrays, as one array (``flatten`` in DuckDB and Athena alike)."""
    return f"flatten({arrays})"


def unnest(array: str) -> str:
    """In a SELECT list: the row once per element of ``array``, as that element (DuckDB's select-list
    ``unnest``, far cheaper there than a lateral join; Athena: ``CROSS JOIN UNNEST(array)``)."""
    return f"unnest({array})"


def contains(array: str, value: str) -> str:
    """Whether the array ``array`` holds ``value`` (DuckDB's ``list_contains``; Athena's ``contains``)."""
    return f"list_contains({array}, {value})"


def record(fields: Mapping[str, tuple[str, str]]) -> str:
    """A record of named, typed values (name -> (SQL expression, SQL type)), read back as
    ``record.name``; records compare field by field, in order (DuckDB's struct literal of casts;
    Athena: ``CAST(ROW(...) AS ROW(name type, ...))``, :mod:`minidrama.metrics.dialects`)."""
    listed = ", ".join(
        f"'{name}': CAST({expression} AS {sql_type})" for name, (expression, sql_type) in fields.items()
    )
    return "{" + listed + "}"


def by_segment(relation: str, columns: str) -> str:
    """Rows of ``relation`` (which has ``os`` and ``region``) once per segment they belong to."""
    return (
        f"(SELECT 'all' AS segment, {columns} FROM {relation}"
        f" UNION ALL SELECT 'os:' || os AS segment, {columns} FROM {relation}"
        f" UNION ALL SELECT 'region:' || region AS segment, {columns} FROM {relation})"
    )


# In a query grouped by user_id over rows of distinct (user, os, region): whether the user has one
# os and one region (cheaper than comparing the least and greatest os and region of the rows).
ONE_SEGMENT_PAIR = "count(*) = 1"


def per_user_by_segment(relation: str, aggregates: Mapping[str, str]) -> str:
    """One row per segment and user of ``relation``: ``segment``, ``user_id`` and each of
    ``aggregates`` (a column of ``relation`` -> its aggregate over the user's rows in the segment,
    e.g. ``{"launches": "sum(launches)"}``), as ``GROUP BY segment, user_id`` over :func:`by_segment`.

    ``relation`` (a CTE) has one row per user_id, os and region, and ``one_segment_pair``
    (:data:`ONE_SEGMENT_PAIR` of the user). A user of one os and region (nearly every user) has one
    row, which is their row in each of their three segments as it stands: only the rows of the other
    users are grouped.
    """
    columns = ", ".join(aggregates)
    grouped = ", ".join(f"{aggregate} AS {column}" for column, aggregate in aggregates.items())
    one_pair = f"(SELECT * FROM {relation} WHERE one_segment_pair) AS one_pair"
    several = f"(SELECT * FROM {relation} WHERE NOT one_segment_pair) AS several"
    return (
        f"(SELECT segment, user_id, {columns} FROM {by_segment(one_pair, '*')} AS expanded"
        f" UNION ALL SELECT segment, user_id, {grouped} FROM {by_segment(several, '*')} AS expanded"
        " GROUP BY segment, user_id)"
    )


def users_by_segment(relation: str, group: str, counts: Sequence[str]) -> str:
    """Per segment and ``group`` (columns of ``relation``): ``users``, the distinct users with a row
    of ``relation`` in the segment, and each of the columns ``counts`` (a value of the user and group,
    the same on every row of them: a 0/1 flag, the user's revenue) summed over those users.

    ``relation`` (a CTE) has one row per user_id, ``group``, os and region, and ``one_segment_pair``
    (:data:`ONE_SEGMENT_PAIR` of the user). A user of one os and region (nearly every user) has one
    row per group: those are counted per os and region first and the counts added into their three
    segments; only the rows of the other users are deduplicated per segment.
    """
    names = ", ".join(counts)
    sums = ", ".join(f"sum({name}) AS {name}" for name in counts)
    several = f"(SELECT * FROM {relation} WHERE NOT one_segment_pair) AS several"
    return f"""(
        WITH one_pair AS (
            SELECT os, region, {group}, count(*) AS users, {sums}
            FROM {relation} WHERE one_segment_pair
            GROUP BY os, region, {group}
        ), several_pairs AS (
            SELECT DISTINCT segment, user_id, {group}, {names}
            FROM {by_segment(several, f"user_id, {group}, {names}")} AS expanded
        )
        SELECT segment, {group}, sum(users) AS users, {sums}
        FROM (
            SELECT segment, {group}, users, {names}
            FROM {by_segment("one_pair", f"{group}, users, {names}")} AS expanded
            UNION ALL
            SELECT segment, {group}, 1 AS users, {names} FROM several_pairs
        ) AS parts
        GROUP BY segment, {group}
    )"""


def _date(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def _on_days(column: str, days: Iterable[date]) -> str:
    """Whether the date ``column`` is one of ``days``: a range's days as BETWEEN, which costs far
    less per row than an IN list of them."""
    listed = sorted(set(days))
    if not listed:
        return "FALSE"
    if (listed[-1] - listed[0]).days == len(listed) - 1:
        return f"{column} BETWEEN {_date(listed[0])} AND {_date(listed[-1])}"
    return f"{column} IN ({', '.join(_date(day) for day in listed)})"


def _values(alias: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]]) -> str:
    """A derived table of literal rows (``columns`` are (name, SQL type)); empty when no rows."""
    names = ", ".join(name for name, _type in columns)
    if not rows:
        nulls = ", ".join(f"CAST(NULL AS {sql_type}) AS {name}" for name, sql_type in columns)
        return f"(SELECT {nulls} WHERE 1 = 0) AS {alias}"
    listed = ", ".join("(" + ", ".join(row) + ")" for row in rows)
    return f"(VALUES {listed}) AS {alias}({names})"


# --- relations several definitions share ------------------------------------------------------

# the latest launch: the latest time, then the greatest event id (stored only where launches of
# one instant can meet: a user's several os and region pairs of one day, see minidrama.metrics.facts)
_RECENCY = record(
    {
        "time": ("latest_row.latest_launch_time", "TIMESTAMP WITH TIME ZONE"),
        "event_id": ("coalesce(latest_row.latest_launch_event_id, '')", "VARCHAR"),
    }
)
# The latest launch's values in one record, a missing one as 'unknown' (max_by skips nulls)
_LAUNCH_VALUES = record(
    {
        column: (f"coalesce(latest_row.{column}, 'unknown')", "VARCHAR")
        for column in (*PROFILE_ATTRIBUTES.values(), *DEVICE_ATTRIBUTES.values())
    }
)
_LATEST_LAUNCH_COLUMNS = (
    "latest_launch_time",
    "latest_launch_event_id",
    *PROFILE_ATTRIBUTES.values(),
    *DEVICE_ATTRIBUTES.values(),
)


def span_rows_of_days(relation: str) -> str:
    """Rows of ``user_days`` (``relation``, with ``day``) as rows of ``user_spans`` of one day each
    (see :mod:`minidrama.metrics.spans`): the day is the first and the last launch day of a row
    with a successful launch."""
    latest = ", ".join(column for column in _LATEST_LAUNCH_COLUMNS if column != "region")
    return (
        "SELECT user_id, os, region, launches, duration_ms, first_launch_day,"
        " CASE WHEN launches > 0 THEN day END AS first_launch_in_span,"
        f" CASE WHEN launches > 0 THEN day END AS last_launch_in_span, {latest} FROM {relation}"
    )


def shared_relations(period: Period) -> dict[str, str]:
    """The relations several definitions read, built (in this order) before their queries:

    ``user_combos(user_id, os, region, launches, duration_ms, first_launch_day, launch_days,
    first_combo_day, recency, latest)``
        the period's ``user_days`` once per user, os and region: successful launches and session
        end durations summed, the user's first launch ever (as the rows carry it), and of the days
        with a successful launch: their list (null when retention is read from its stored
        counts), the first one, and the latest launch's ``recency``
        (time, event id) and attributes (``latest``, a missing one as ``'unknown'``). Users,
        profile and device read it instead of each grouping the period's rows again. A range with
        :attr:`Period.spans` folds ``user_spans`` (span rollups and single days) instead of
        ``user_days``: the same fold, of fewer rows.
    ``launch_users(user_id, one_segment_pair, first_day)``
        every user with a launch in the period: whether those launches have one os and one region
        (:func:`per_user_by_segment`), and the first launch ever (the ``first_launch`` row).
    ``cohort_combos(user_id, os, region, launch_days, first_combo_day)``
        ``cohort_launches`` once per user, os and region: the cohort days with a launch (retention,
        LTV).

    A range's cohort days are its days, so its ``cohort_combos`` are its ``user_combos`` with a
    launch, and its ``first_launch`` comes from ``user_combos`` too (every row of a range's facts
    carries its user's first launch ever): the range's rows are read once.
    """
    if period.spans and not period.stored_retention:
        raise ValueError("span rollups hold no launch days: a range reads them only with stored retention")
    rows = "user_spans" if period.spans else f"({span_rows_of_days('user_days')})"
    launched = "FILTER (WHERE launches > 0)"
    # only retention reads the lists, and not when a range reads its stored counts (rows of days
    # then: a row's first launch day is its day)
    launch_days = (
        "CAST(NULL AS DATE[])" if period.stored_retention else f"{collect('first_launch_in_span')} {launched}"
    )
    relations = {
        # A user, os and region have one row a day (or a span): their latest launch is that of
        # their last launch day, read back by a join (far cheaper than a max_by of records over
        # every row).
        "user_combos": f"""
            WITH grouped AS (
                SELECT user_id, os, region, sum(launches) AS launches, sum(duration_ms) AS duration_ms,
                       min(first_launch_day) AS first_launch_day,
                       {launch_days} AS launch_days, min(first_launch_in_span) AS first_combo_day,
                       max(last_launch_in_span) AS last_launch_day
                FROM {rows} AS user_rows GROUP BY user_id, os, region
            )
            SELECT grouped.user_id, grouped.os, grouped.region, grouped.launches, grouped.duration_ms,
                   grouped.first_launch_day, grouped.launch_days, grouped.first_combo_day,
                   CASE WHEN latest_row.user_id IS NOT NULL THEN {_RECENCY} END AS recency,
                   CASE WHEN latest_row.user_id IS NOT NULL THEN {_LAUNCH_VALUES} END AS latest
            FROM grouped
            LEFT JOIN {rows} AS latest_row
              ON latest_row.user_id = grouped.user_id AND latest_row.os = grouped.os
             AND latest_row.region = grouped.region
             AND latest_row.last_launch_in_span = grouped.last_launch_day
        """
    }
    relations["launch_users"] = f"""
        SELECT user_id, {ONE_SEGMENT_PAIR} AS one_segment_pair, min(first_launch_day) AS first_day
        FROM user_combos WHERE launches > 0 GROUP BY user_id
    """
    if period.kind == "range":
        relations["first_launch"] = """
            SELECT user_id, min(first_launch_day) AS first_day FROM user_combos
            WHERE first_launch_day IS NOT NULL GROUP BY user_id
        """
        relations["cohort_combos"] = """
            SELECT user_id, os, region, launch_days, first_combo_day FROM user_combos WHERE launches > 0
        """
    else:
        relations["cohort_combos"] = f"""
            SELECT user_id, os, region, {collect("day")} AS launch_days, min(day) AS first_combo_day
            FROM cohort_launches GROUP BY user_id, os, region
        """
    return relations


# --- document conventions (SPEC section 6) ----------------------------------------------------


def money(value: Decimal | int | float | None) -> float:
    """A money amount as a JSON number rounded to 2 decimals; a sum over nothing is 0.0."""
    if value is None:
        return 0.0
    return float(Decimal(value).quantize(_CENT, rounding=ROUND_HALF_UP))


def ratio(numerator: float | int | Decimal | None, denominator: float | int | Decimal | None) -> float | None:
    """numerator / denominator as a float, or None when the denominator is 0 (or missing)."""
    if not denominator:
        return None
    return float(numerator or 0) / float(denominator)


def money_ratio(numerator: Decimal | None, denominator: int | None) -> float | None:
    if not denominator:
        return None
    return money(Decimal(numerator or 0) / Decimal(denominator))


def _count(value: Any) -> int:
    return int(value or 0)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def segment_order(segments: Iterable[str]) -> list[str]:
    """``all`` first, then ``os:`` and ``region:`` segments, each alphabetical."""

    def key(segment: str) -> tuple[int, str]:
        kind = segment.split(":", 1)[0]
        return ({"all": 0, "os": 1, "region": 2}.get(kind, 3), segment)

    return sorted(set(segments), key=key)


# --- results ----------------------------------------------------------------------------------


class SegmentResults:
    """The rows of every definition's queries for one segment."""

    def __init__(self, rows: Mapping[tuple[str, str], Mapping[str, list[Row]]], segment: str) -> None:
        self._rows = rows
        self.segment = segment

    def rows(self, definition: Definition, query: str = "main") -> list[Row]:
        return list(self._rows[(definition.name, query)].get(self.segment, []))

    def one(self, definition: Definition, query: str = "main") -> Row:
        found = self.rows(definition, query)
        return found[0] if found else {}


def group_by_segment(rows: Iterable[Row]) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row["segment"]].append(row)
    return grouped


class Definition:
    """One metric (or a few computed together): its SQL and the document keys it fills."""

    name: ClassVar[str]

    def queries(self, period: Period) -> dict[str, str]:
        """Named queries; each returns rows with a ``segment`` column."""
        raise NotImplementedError

    def fill(self, results: SegmentResults, period: Period) -> Fragment:
        """The document keys this definition owns, for the segment of ``results``."""
        raise NotImplementedError


# --- the definitions --------------------------------------------------------------------------


class Segments(Definition):
    """``all``, and one ``os:`` / ``region:`` segment per value seen in any known-name event of the
    period (launch attempts, session ends, page views, standing orders)."""

    name = "segments"

    def queries(self, period: Period) -> dict[str, str]:
        pairs = "(SELECT DISTINCT os, region FROM event_counts) AS pairs"
        return {
            "main": f"SELECT 'all' AS segment UNION SELECT segment FROM {by_segment(pairs, 'os')} AS expanded"
        }

    def fill(self, results: SegmentResults, period: Period) -> Fragment:
        return {}


class TotalUsers(Definition):
    """Distinct users with a launch in the segment on any day up to the last day.

    Counted over all history when a day is computed (:meth:`stored_sql`, kept in the day's facts as
    ``segment_totals``); a period reads the totals of its last day.
    """

    name = "total_users"

    @staticmethod
    def stored_sql(day: date) -> str:
        """Every segment's total users up to ``day``, from ``user_first(user_id, os, region, first_day)``."""
        # three aggregations of the users, not one over their rows repeated per segment (a third of
        # the rows to deduplicate at once)
        launched = f"(SELECT user_id, os, region FROM user_first WHERE first_day <= {_date(day)}) AS launched"
        return f"""
            SELECT 'all' AS segment, count(DISTINCT user_id) AS total_users FROM {launched}
            UNION ALL
            SELECT 'os:' || os AS segment, count(DISTINCT user_id) AS total_users FROM {launched} GROUP BY os
            UNION ALL
            SELECT 'region:' || region AS segment, count(DISTINCT user_id) AS total_users
            FROM {launched} GROUP BY region
        """

    def queries(self, period: Period) -> dict[str, str]:
        return {"main": "SELECT segment, total_users FROM segment_totals"}

    def fill(self, results: SegmentResults, period: Period) -> Fragment:
        total = _count(results.one(self).get("total_users"))
        return {"dashboard": {"total_users": total}, "behavior": {"total_users": total}}


class Users(Definition):
    """Active, new and repeat users, visits, and user durations (their median, effectively active)."""

    name = "users"

    def queries(self, period: Period) -> dict[str, str]:
        per_user = per_user_by_segment(
            "marked",
            {"launches": "sum(launches)", "duration_ms": "sum(duration_ms)", "is_new": "min(is_new)"},
        )
        return {
            "main": f"""
                WITH users AS (
                    -- a user's rows are distinct (os, region) pairs, and each carries their first
                    -- launch ever (or none: never launched)
                    SELECT user_id, {ONE_SEGMENT_PAIR} AS one_segment_pair,
                           CASE WHEN min(first_launch_day) >= {_date(period.first)} THEN 1 ELSE 0 END
                               AS is_new
                    FROM user_combos GROUP BY user_id
                ), marked AS (
                    SELECT user_combos.user_id, user_combos.os, user_combos.region, user_combos.launches,
                           user_combos.duration_ms, users.one_segment_pair, users.is_new
                    FROM user_combos JOIN users ON users.user_id = user_combos.user_id
                ), active AS (
                    SELECT segment, launches, duration_ms AS duration, is_new
                    FROM {per_user} AS per_user
                    WHERE launches > 0
                )
                SELECT segment,
                       count(*) AS active_users,
                       sum(is_new) AS new_users,
                       sum(CASE WHEN launches >= 2 THEN 1 ELSE 0 END) AS repeat_users,
                       sum(launches) AS visit_count,
                       {median("duration")} AS median_duration_per_user_ms,
                       sum(CASE WHEN duration > 0 THEN 1 ELSE 0 END) AS effectively_active_users
                FROM active
                GROUP BY segment
            """
        }

    def active_users(self, results: SegmentResults) -> int:
        return _count(results.one(self).get("active_users"))

    def fill(self, results: SegmentResults, period: Period) -> Fragment:
        row = results.one(self)
        active_users = self.active_users(results)
        new_users = _count(row.get("new_users"))
        visit_count = _count(row.get("visit_count"))
        median_per_user = _number(row.get("median_duration_per_user_ms"))
        return {
            "dashboard": {
                "active_users": active_users,
                "new_users": new_users,
                "median_duration_per_user_ms": median_per_user,
            },
            "behavior": {
                "new_users": new_users,
                "repeat_users": _count(row.get("repeat_users")),
                "visit_count": visit_count,
                "average_visit_count": ratio(visit_count, active_users),
                "median_duration_per_user_ms": median_per_user,
                "active_users": active_users,
                "effectively_active_users": _count(row.get("effectively_active_users")),
            },
        }


class Sessions(Definition):
    """The median duration of the period's session ends."""

    name = "sessions"

    def queries(self, period: Period) -> dict[str, str]:
        return {
            "main": f"""
                SELECT segment, {median("duration_ms")} AS median_duration_per_session_ms
                FROM {by_segment("session_ends", "duration_ms")} AS expanded
                GROUP BY segment
            """
        }

    def fill(self, results: SegmentResults, period: Period) -> Fragment:
        median_per_session = _number(results.one(self).get("median_duration_per_session_ms"))
        return {"behavior": {"median_duration_per_session_ms": median_per_session}}


class Retention(Definition):
    """Cohorts (new / active users of a day in the segment) and who of them launched N days later
    in any segment. A day reports dN of the cohort of D - N; a range, every cohort day of it."""

    name = "retention"

    def queries(self, period: Period) -> dict[str, str]:
        if period.stored_retention:
            return {"main": self._stored(period)}
        # A member's return is looked up in the list of their launch days (any segment): joining
        # the cohort to the return days on user_id alone grows as the square of a user's launch
        # days. The cohort rows are unnested from each user, os and region's list of days, so no
        # step joins or groups one row per user and day.
        returned = ", ".join(
            f"CASE WHEN {_on_days('cohort_date', dates)}"
            f" AND {contains('launch_days', f'cohort_date + {offset}')} THEN 1 ELSE 0 END AS d{offset}"
            for offset, dates in self._measured(period).items()
        )
        counts = ["is_new"]
        for offset in RETENTION_DAYS:
            counts += [f"d{offset}", f"d{offset}_new"]
        retained = ", ".join(
            f"d{offset} AS d{offset}_active_users, d{offset}_new AS d{offset}_new_users"
            for offset in RETENTION_DAYS
        )
        return {
            "main": f"""
                WITH pairs AS (
                    SELECT user_id, os, region, launch_days AS pair_days FROM cohort_combos
                ), users AS (
                    SELECT pairs.user_id, {ONE_SEGMENT_PAIR} AS one_segment_pair,
                           {flatten(collect("pairs.pair_days"))} AS launch_days,
                           min(first_launch.first_day) AS first_day
                    FROM pairs JOIN first_launch ON first_launch.user_id = pairs.user_id
                    GROUP BY pairs.user_id
                ), cohort_days AS (
                    SELECT pairs.user_id, pairs.os, pairs.region, users.one_segment_pair, users.first_day,
                           users.launch_days, {unnest("pairs.pair_days")} AS cohort_date
                    FROM pairs JOIN users ON users.user_id = pairs.user_id
                ), flagged AS (
                    SELECT user_id, os, region, one_segment_pair, cohort_date,
                           CASE WHEN first_day = cohort_date THEN 1 ELSE 0 END AS is_new, {returned}
                    FROM cohort_days
                    WHERE {_on_days("cohort_date", period.retention_cohort_days)}
                ), cohort_rows AS (
                    SELECT *, {", ".join(f"d{offset} * is_new AS d{offset}_new" for offset in RETENTION_DAYS)}
                    FROM flagged
                )
                SELECT segment, cohort_date, users AS active_users, is_new AS new_users, {retained}
                FROM {users_by_segment("cohort_rows", "cohort_date", counts)} AS counted
            """
        }

    @staticmethod
    def _stored(period: Period) -> str:
        """The range's rows from the stored counts of its days (``retention``, see
        :func:`stored_rows`): each cohort day's own row, and its dN from the row of day C + N."""
        retained = ", ".join(
            f"max(CASE WHEN back.days_after = {offset} THEN back.{kind}_users END) AS d{offset}_{kind}_users"
            for offset in RETENTION_DAYS
            for kind in ("active", "new")
        )
        return f"""
            SELECT own.segment, own.cohort_date, own.active_users, own.new_users, {retained}
            FROM retention AS own
            LEFT JOIN retention AS back
              ON back.segment = own.segment AND back.cohort_date = own.cohort_date AND back.days_after > 0
            WHERE own.days_after = 0 AND own.active_users > 0
              AND {_on_days("own.cohort_date", period.days)}
            GROUP BY own.segment, own.cohort_date, own.active_users, own.new_users
        """

    @staticmethod
    def stored_rows(
        day: date, results: Mapping[tuple[str, str], list[Row]], sources: Mapping[date, str]
    ) -> list[tuple]:
        """The rows of the stored ``retention`` table of ``day`` from its results (run_definitions'):
        per segment, the day's own cohort (days_after 0: the day's active and new users, the same
        sets as a cohort's, SPEC section 6) and the returns to the day of the cohort of D - N
        (days_after N); ``all`` has every row, zeros included, so that a reader can tell a stored
        empty cohort from a missing one. ``sources[C]`` names what cohort C was computed from."""
        rows: list[tuple] = []
        own = {row["segment"]: row for row in results[("users", "main")]}
        for segment in segment_order({"all", *own}):
            row = own.get(segment, {})
            rows.append(
                (segment, day, 0, _count(row.get("active_users")), _count(row.get("new_users")), sources[day])
            )
        for offset in RETENTION_DAYS:
            cohort = day - timedelta(days=offset)
            back = {
                row["segment"]: row for row in results[("retention", "main")] if row["cohort_date"] == cohort
            }
            for segment in segment_order({"all", *back}):
                row = back.get(segment, {})
                active, new = (_count(row.get(f"d{offset}_{kind}_users")) for kind in ("active", "new"))
                rows.append((segment, cohort, offset, active, new, sources[cohort]))
        return rows

    @staticmethod
    def _measured(period: Period) -> dict[int, list[date]]:
        """For each N, the cohort days whose dN the period measures."""
        return {
            offset: [pair.cohort_date for pair in period.retention_pairs if pair.offset == offset]
            for offset in RETENTION_DAYS
        }

    def fill(self, results: SegmentResults, period: Period) -> Fragment:
        sizes: dict[tuple[str, date], int] = {}
        retained: dict[tuple[str, date, int], int] = {}
        for row in results.rows(self):
            for kind in ("new", "active"):
                sizes[(kind, row["cohort_date"])] = _count(row[f"{kind}_users"])
                for offset in RETENTION_DAYS:
                    retained[(kind, row["cohort_date"], offset)] = _count(row[f"d{offset}_{kind}_users"])
        if period.kind == "day":
            return {"retention": self._day(period, sizes, retained)}
        return {"retention": self._range(period, sizes, retained)}

    @staticmethod
    def _day(period: Period, sizes: Mapping, retained: Mapping) -> dict[str, Any]:
        retention: dict[str, dict[str, Any]] = {"new": {}, "active": {}}
        for pair in period.retention_pairs:
            for kind in ("new", "active"):
                size = sizes.get((kind, pair.cohort_date), 0)
                back = retained.get((kind, pair.cohort_date, pair.offset), 0)
                retention[kind][f"d{pair.offset}"] = {
                    "cohort_date": pair.cohort_date.isoformat(),
                    "cohort_size": size,
                    "retained": back,
                    "rate": ratio(back, size),
                }
        return retention

    @staticmethod
    def _range(period: Period, sizes: Mapping, retained: Mapping) -> dict[str, Any]:
        measured = {(pair.cohort_date, pair.offset) for pair in period.retention_pairs}
        retention: dict[str, Any] = {}
        for kind in ("new", "active"):
            cohorts = []
            totals = {offset: [0, 0] for offset in RETENTION_DAYS}
            for cohort_date in period.days:
                size = sizes.get((kind, cohort_date), 0)
                row: dict[str, Any] = {"cohort_date": cohort_date.isoformat(), "cohort_size": size}
                for offset in RETENTION_DAYS:
                    if (cohort_date, offset) not in measured:
                        row[f"d{offset}"] = None
                        continue
                    back = retained.get((kind, cohort_date, offset), 0)
                    row[f"d{offset}"] = {"retained": back, "rate": ratio(back, size)}
                    totals[offset][0] += size
                    totals[offset][1] += back
                cohorts.append(row)
            retention[kind] = {
                "cohorts": cohorts,
                **{
                    f"d{offset}": {"cohort_size": size, "retained": back, "rate": ratio(back, size)}
                    for offset, (size, back) in totals.items()
                },
            }
        return retention


class Attributes(Definition):
    """Profile and device: the new / active users of the period by their latest launch's attributes."""

    name = "attributes"

    def queries(self, period: Period) -> dict[str, str]:
        attributes = {**PROFILE_ATTRIBUTES, **DEVICE_ATTRIBUTES}
        values = " UNION ALL ".join(
            f"SELECT segment, is_new, '{name}' AS attribute, latest.{column} AS value FROM per_user"
            for name, column in attributes.items()
        )
        per_user = per_user_by_segment(
            "marked", {"latest": "max_by(latest, recency)", "is_new": "min(is_new)"}
        )
        return {
            "main": f"""
                WITH combos AS (
                    -- each user, os and region's latest launch of the period
                    SELECT user_id, os, region, recency, latest FROM user_combos WHERE launches > 0
                ), users AS (
                    SELECT user_id, one_segment_pair,
                           CASE WHEN first_day >= {_date(period.first)} THEN 1 ELSE 0 END AS is_new
                    FROM launch_users
                ), marked AS (
                    SELECT combos.*, users.one_segment_pair, users.is_new
                    FROM combos JOIN users ON users.user_id = combos.user_id
                ), per_user AS (
                    -- the latest launch of each user in each segment
                    SELECT * FROM {per_user} AS per_user
                ), attribute_values AS ({values})
                SELECT segment, attribute, value, count(*) AS active_users, sum(is_new) AS new_users
                FROM attribute_values
                GROUP BY segment, attribute, value
            """
        }

    def fill(self, results: SegmentResults, period: Period) -> Fragment:
        breakdowns: dict[str, dict[str, dict[str, dict[str, int]]]] = {
            module: {kind: {name: {} for name in names} for kind in ("new", "active")}
            for module, names in (("profile", PROFILE_ATTRIBUTES), ("device", DEVICE_ATTRIBUTES))
        }
        rows = sorted(
            results.rows(self), key=lambda row: (row["attribute"], -_count(row["active_users"]), row["value"])
        )
        for row in rows:
            module = "profile" if row["attribute"] in PROFILE_ATTRIBUTES else "device"
            for kind in ("new", "active"):
                users = _count(row[f"{kind}_users"])
                if users:
                    breakdowns[module][kind][row["attribute"]][row["value"]] = users
        return dict(breakdowns)


class EntryPoints(Definition):
    """Per entry point: active and new users who launched through it, launch sessions, and the mean
    duration of the session ends whose session a launch through it opened (in any segment)."""

    name = "entry_points"

    def queries(self, period: Period) -> dict[str, str]:
        return {
            "main": f"""
                WITH combos AS (
                    SELECT user_id, os, region, entry_point, sum(launches) AS launches
                    FROM {"entry_spans" if period.spans else "entry_points"} AS entry_rows
                    GROUP BY user_id, os, region, entry_point
                ), user_entries AS (
                    -- a launch through an entry point is a launch: its user is a launch user
                    SELECT combos.entry_point, combos.user_id, combos.os, combos.region,
                           launch_users.one_segment_pair,
                           CASE WHEN launch_users.first_day >= {_date(period.first)} THEN 1 ELSE 0 END
                               AS is_new
                    FROM combos JOIN launch_users ON launch_users.user_id = combos.user_id
                ), entry_users AS (
                    SELECT segment, entry_point, users AS active_users, is_new AS new_users
                    FROM {users_by_segment("user_entries", "entry_point", ["is_new"])} AS counted
                ), pair_launches AS (
                    -- launches add up: summed per os, region and entry point before the segments
                    SELECT os, region, entry_point, sum(launches) AS launches
                    FROM combos GROUP BY os, region, entry_point
                ), launch_counts AS (
                    SELECT segment, entry_point, sum(launches) AS launch_sessions
                    FROM {by_segment("pair_launches", "entry_point, launches")} AS expanded
                    GROUP BY segment, entry_point
                ), entry_sessions AS (
                    -- (no filter to the sessions that ended: over a long range nearly all did, and
                    -- the join below filters as cheaply as a semi-join would)
                    SELECT DISTINCT entry_point, session_id FROM entry_points
                ), session_totals AS (
                    -- summed per os, region and entry point before they go into segments: integer
                    -- sums are exact (as avg's double sum of integers is, below 2^53 ms), so their
                    -- quotient is the mean avg() gives
                    SELECT session_ends.os, session_ends.region, entry_sessions.entry_point,
                           sum(session_ends.duration_ms) AS duration_ms, count(*) AS session_ends
                    FROM session_ends
                    JOIN entry_sessions ON entry_sessions.session_id = session_ends.session_id
                    GROUP BY session_ends.os, session_ends.region, entry_sessions.entry_point
                ), session_durations AS (
                    SELECT segment, entry_point,
                           CAST(sum(duration_ms) AS DOUBLE) / sum(session_ends)
                               AS average_duration_per_session_ms
                    FROM {by_segment("session_totals", "entry_point, duration_ms, session_ends")} AS expanded
                    GROUP BY segment, entry_point
                )
                SELECT launch_counts.segment, launch_counts.entry_point, entry_users.active_users,
                       entry_users.new_users, launch_counts.launch_sessions,
                       session_durations.average_duration_per_session_ms
                FROM launch_counts
                JOIN entry_users
                  ON entry_users.segment = launch_counts.segment
                 AND entry_users.entry_point = launch_counts.entry_point
                LEFT JOIN session_durations
                  ON session_durations.segment = launch_counts.segment
                 AND session_durations.entry_point = launch_counts.entry_point
            """
        }

    def fill(self, results: SegmentResults, period: Period) -> Fragment:
        rows = sorted(
            results.rows(self), key=lambda row: (-_count(row["launch_sessions"]), row["entry_point"])
        )
        return {
            "entry_points": {
                row["entry_point"]: {
                    "active_users": _count(row["active_users"]),
                    "new_users": _count(row["new_users"]),
                    "launch_sessions": _count(row["launch_sessions"]),
                    "average_duration_per_session_ms": _number(row["average_duration_per_session_ms"]),
                }
                for row in rows
            }
        }


class Funnel(Definition):
    """Page views of each stage, then orders (recharge or redeem), with the rates between stages."""

    name = "funnel"

    def queries(self, period: Period) -> dict[str, str]:
        stages = ", ".join(f"'{stage}'" for stage in (*FUNNEL_PAGE_VIEWS, *ORDER_TYPES.values()))
        stage_rows = (
            f"(SELECT os, region, event_name, events FROM event_counts WHERE event_name IN ({stages}))"
        )
        return {
            "main": f"""
                SELECT segment, event_name AS stage, sum(events) AS pv
                FROM {by_segment(stage_rows + " AS stage_rows", "event_name, events")} AS expanded
                GROUP BY segment, event_name
            """
        }

    def fill(self, results: SegmentResults, period: Period) -> Fragment:
        page_views = {row["stage"]: _count(row["pv"]) for row in results.rows(self)}
        funnel = {}
        for order_type, order_event in ORDER_TYPES.items():
            stages = [*FUNNEL_PAGE_VIEWS, order_event]
            counts = [page_views.get(stage, 0) for stage in stages]
            funnel[order_type] = [
                {
                    "stage": stage,
                    "pv": pv,
                    "rate_from_previous": None if index == 0 else ratio(pv, counts[index - 1]),
                    "rate_from_first": ratio(pv, counts[0]),
                }
                for index, (stage, pv) in enumerate(zip(stages, counts, strict=True))
            ]
        return {"funnel": funnel}


def _payer_orders(period: Period) -> str:
    """The period's orders with their user's payer group: ``new_payers`` when the user's first
    recharge ever is in the period, ``returning_payers`` when before it, none when never (up to
    the last day)."""
    first, last = _date(period.first), _date(period.last)
    return f"""
        SELECT orders.os, orders.region, orders.event_name, orders.amount, orders.product_id,
               CASE WHEN first_recharge.first_day >= {first} AND first_recharge.first_day <= {last}
                        THEN 'new_payers'
                    WHEN first_recharge.first_day < {first} THEN 'returning_payers' END AS payer_group
        FROM orders
        LEFT JOIN first_recharge ON first_recharge.user_id = orders.user_id
    """


class Orders(Definition):
    """GMV, average GMV, recharge and redeem orders and the top 10 redeemed products, for all orders
    and by payer group."""

    name = "orders"

    def queries(self, period: Period) -> dict[str, str]:
        grouped = f"""
            payer_orders AS ({_payer_orders(period)}),
            grouped AS (
                SELECT os, region, 'all' AS payer_group, event_name, amount, product_id FROM payer_orders
                UNION ALL
                SELECT os, region, payer_group, event_name, amount, product_id FROM payer_orders
                WHERE payer_group IS NOT NULL
            )
        """
        return {
            "main": f"""
                WITH {grouped}
                SELECT segment, payer_group,
                       sum(CASE WHEN event_name = 'recharge_order' THEN amount END) AS gmv,
                       sum(CASE WHEN event_name = 'recharge_order' THEN 1 ELSE 0 END) AS recharge_orders,
                       sum(CASE WHEN event_name = 'redeem_order' THEN 1 ELSE 0 END) AS redeem_orders
                FROM {by_segment("grouped", "payer_group, event_name, amount")} AS expanded
                GROUP BY segment, payer_group
            """,
            "top_products": f"""
                WITH {grouped}, counted AS (
                    SELECT segment, payer_group, product_id, count(*) AS orders
                    FROM {by_segment("grouped", "payer_group, event_name, product_id")} AS expanded
                    WHERE event_name = 'redeem_order'
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
        }

    def gmv(self, results: SegmentResults, payer_group: str = "all") -> Decimal | None:
        return next(
            (row["gmv"] for row in results.rows(self) if row["payer_group"] == payer_group),
            None,
        )

    def fill(self, results: SegmentResults, period: Period) -> Fragment:
        by_group = {row["payer_group"]: row for row in results.rows(self)}
        top: dict[str, list[Row]] = defaultdict(list)
        for row in results.rows(self, "top_products"):
            top[row["payer_group"]].append(row)
        orders = {}
        for group in PAYER_GROUPS:
            row = by_group.get(group, {})
            gmv = row.get("gmv")
            recharge_orders = _count(row.get("recharge_orders"))
            orders[group] = {
                "gmv": money(gmv),
                "average_gmv": money_ratio(gmv, recharge_orders),
                "recharge_orders": recharge_orders,
                "redeem_orders": _count(row.get("redeem_orders")),
                "top_redeemed_products": [
                    {"product_id": item["product_id"], "orders": _count(item["orders"])}
                    for item in sorted(top[group], key=lambda item: item["position"])
                ],
            }
        return {"iap_orders": orders}


class Payers(Definition):
    """Paying and repeat paying users (rated against active users) and ARPPU."""

    name = "payers"

    def queries(self, period: Period) -> dict[str, str]:
        recharge_rows = (
            "(SELECT user_id, os, region FROM orders WHERE event_name = 'recharge_order') AS recharges"
        )
        return {
            "main": f"""
                WITH per_user AS (
                    SELECT segment, user_id, count(*) AS recharge_orders
                    FROM {by_segment(recharge_rows, "user_id")} AS expanded
                    GROUP BY segment, user_id
                )
                SELECT segment, count(*) AS paying_users,
                       sum(CASE WHEN recharge_orders >= 2 THEN 1 ELSE 0 END) AS repeat_paying_users
                FROM per_user
                GROUP BY segment
            """
        }

    def fill(self, results: SegmentResults, period: Period) -> Fragment:
        row = results.one(self)
        paying_users = _count(row.get("paying_users"))
        repeat_paying_users = _count(row.get("repeat_paying_users"))
        active_users = USERS.active_users(results)
        return {
            "iap_users": {
                "paying_users": paying_users,
                "paying_user_rate": ratio(paying_users, active_users),
                "repeat_paying_users": repeat_paying_users,
                "repeat_paying_user_rate": ratio(repeat_paying_users, active_users),
                "arppu": money_ratio(ORDERS.gmv(results), paying_users),
            }
        }


class Ltv(Definition):
    """LTV: revenue of a cohort of new users (recharges in any segment) per cohort member.

    A day reports dN of the new users of D - N, revenue D - N .. D; a range reports its new users
    (``range``: revenue over the range; dN: users whose first launch C has C + N <= T, over C .. C+N).
    """

    name = "ltv"

    def queries(self, period: Period) -> dict[str, str]:
        windows = _values(
            "windows",
            (
                ("label", "VARCHAR"),
                ("cohort_date", "DATE"),
                ("active_from", "DATE"),
                ("active_to", "DATE"),
                ("revenue_from", "DATE"),
                ("revenue_to", "DATE"),
            ),
            [
                (
                    f"'{w.label}'",
                    _date(w.cohort_date),
                    _date(w.active_from),
                    _date(w.active_to),
                    _date(w.revenue_from),
                    _date(w.revenue_to),
                )
                for w in period.ltv_windows
            ],
        )
        new_users = _on_days("first_launch.first_day", (window.cohort_date for window in period.ltv_windows))
        return {
            "main": f"""
                WITH new_combos AS (
                    SELECT cohort_combos.user_id, cohort_combos.os, cohort_combos.region,
                           cohort_combos.first_combo_day, first_launch.first_day
                    FROM cohort_combos JOIN first_launch ON first_launch.user_id = cohort_combos.user_id
                    WHERE {new_users}
                ), new_users AS (
                    SELECT user_id, min(first_day) AS first_day, {ONE_SEGMENT_PAIR} AS one_segment_pair
                    FROM new_combos GROUP BY user_id
                ), user_windows AS (
                    SELECT new_users.user_id, new_users.one_segment_pair, windows.label,
                           windows.active_from, windows.active_to, windows.revenue_from, windows.revenue_to
                    FROM new_users JOIN {windows} ON windows.cohort_date = new_users.first_day
                ), user_revenue AS (
                    -- revenue is of any segment: summed per user and window before the segments
                    SELECT user_windows.user_id, user_windows.label, sum(recharges.amount) AS revenue
                    FROM user_windows
                    JOIN recharges
                      ON recharges.user_id = user_windows.user_id
                     AND recharges.day >= user_windows.revenue_from
                     AND recharges.day <= user_windows.revenue_to
                    GROUP BY user_windows.user_id, user_windows.label
                ), members AS (
                    -- a new user is in a window's cohort in a segment when they launched in it in
                    -- the window's activity span; no span starts after its cohort day (the user's
                    -- first launch ever), so that is when a first launch of one of their os and
                    -- region pairs in the segment is in the span (a range's span is the range, a
                    -- day's is the cohort day)
                    SELECT new_combos.user_id, new_combos.os, new_combos.region, user_windows.label,
                           user_windows.one_segment_pair, user_revenue.revenue
                    FROM new_combos
                    JOIN user_windows ON user_windows.user_id = new_combos.user_id
                    LEFT JOIN user_revenue
                      ON user_revenue.user_id = new_combos.user_id AND user_revenue.label = user_windows.label
                    WHERE new_combos.first_combo_day >= user_windows.active_from
                      AND new_combos.first_combo_day <= user_windows.active_to
                )
                SELECT segment, label, users AS cohort_size, revenue
                FROM {users_by_segment("members", "label", ["revenue"])} AS counted
            """
        }

    def fill(self, results: SegmentResults, period: Period) -> Fragment:
        by_label = {row["label"]: row for row in results.rows(self)}
        labels = [f"d{offset}" for offset in LTV_DAYS]
        if period.kind == "range":
            labels = ["range", *labels]
        cohort_dates = {w.label: w.cohort_date for w in period.ltv_windows} if period.kind == "day" else {}
        ltv = {}
        for label in labels:
            row = by_label.get(label, {})
            size = _count(row.get("cohort_size"))
            revenue = row.get("revenue")
            value: dict[str, Any] = {}
            if label in cohort_dates:
                value["cohort_date"] = cohort_dates[label].isoformat()
            value |= {"cohort_size": size, "revenue": money(revenue), "value": money_ratio(revenue, size)}
            ltv[label] = value
        return {"iap_users": {"ltv": ltv}}


class Performance(Definition):
    """Loading success rate and average launch speed of the period's launch attempts."""

    name = "performance"

    def queries(self, period: Period) -> dict[str, str]:
        columns = "events, successful_launches, launch_ms_total, timed_launches"
        launch_rows = (
            f"(SELECT os, region, {columns} FROM event_counts WHERE event_name = 'app_launch') AS launches"
        )
        return {
            "main": f"""
                SELECT segment, sum(events) AS launches, sum(successful_launches) AS successful_launches,
                       sum(launch_ms_total) AS launch_ms_total, sum(timed_launches) AS timed_launches
                FROM {by_segment(launch_rows, columns)} AS expanded
                GROUP BY segment
            """
        }

    def fill(self, results: SegmentResults, period: Period) -> Fragment:
        row = results.one(self)
        return {
            "performance": {
                "loading_success_rate": ratio(row.get("successful_launches"), row.get("launches")),
                "average_launch_ms": ratio(row.get("launch_ms_total"), row.get("timed_launches")),
            }
        }


SEGMENTS = Segments()
TOTAL_USERS = TotalUsers()
USERS = Users()
ORDERS = Orders()
DEFINITIONS: tuple[Definition, ...] = (
    SEGMENTS,
    TOTAL_USERS,
    USERS,
    Sessions(),
    Retention(),
    Attributes(),
    EntryPoints(),
    Funnel(),
    Payers(),
    Ltv(),
    ORDERS,
    Performance(),
)
