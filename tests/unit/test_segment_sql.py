"""The SQL helpers that count users per segment without grouping most users' rows per segment.

``users_by_segment`` counts a user of one os and region per (os, region) first and deduplicates
only the rows of users of several; ``per_user_by_segment`` passes a user of one os and region
through as their row in each segment and groups only the others. Whatever the mix of users, each
must give what the plain formulation gives over every row expanded into its segments.
``_on_days`` writes a range's days as BETWEEN; it must select exactly the listed days.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from minidrama.metrics.definitions import (
    ONE_SEGMENT_PAIR,
    _on_days,
    by_segment,
    per_user_by_segment,
    users_by_segment,
)

# (user_id, day, os, region, is_new): one row per user, day, os and region
ROWS = {
    "one user, one pair": [("u1", 1, "ios", "US", 1)],
    "one pair, several days": [("u1", 1, "ios", "US", 1), ("u1", 2, "ios", "US", 0)],
    "two regions on one day": [("u1", 1, "ios", "US", 1), ("u1", 1, "ios", "GB", 1)],
    "two os on one day": [("u1", 1, "ios", "US", 0), ("u1", 1, "android", "US", 0)],
    "another pair on another day": [("u1", 1, "ios", "US", 1), ("u1", 2, "android", "PH", 0)],
    "a mix of users": [
        ("u1", 1, "ios", "US", 1),
        ("u1", 2, "ios", "US", 0),
        ("u2", 1, "android", "GB", 0),
        ("u2", 1, "android", "US", 0),
        ("u2", 2, "ios", "US", 0),
        ("u3", 2, "ios", "GB", 1),
        ("u4", 1, "android", "PH", 1),
        ("u4", 1, "ios", "PH", 1),
        ("u4", 1, "ios", "US", 1),
    ],
}


# marks each row with whether its user has one os and region, as the helpers need (ONE_SEGMENT_PAIR
# counts a user's distinct pairs)
MARKED = f"""
    WITH pairs AS (SELECT DISTINCT user_id, os, region FROM given),
    users AS (SELECT user_id, {ONE_SEGMENT_PAIR} AS one_segment_pair FROM pairs GROUP BY user_id),
    marked AS (SELECT given.*, users.one_segment_pair FROM given JOIN users USING (user_id))
"""


def _connection(rows: list[tuple]) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(
        "CREATE TABLE given (user_id VARCHAR, day INTEGER, os VARCHAR, region VARCHAR, is_new INTEGER)"
    )
    connection.executemany("INSERT INTO given VALUES (?, ?, ?, ?, ?)", rows)
    return connection


@pytest.mark.parametrize("rows", ROWS.values(), ids=ROWS.keys())
def test_users_by_segment_counts_what_distinct_users_per_segment_count(rows):
    # GIVEN rows of users of one or of several os and region pairs
    connection = _connection(rows)

    # WHEN they are counted by users_by_segment and by distinct users over every segment's rows
    counted = connection.execute(
        f"{MARKED} SELECT segment, day, users, is_new FROM {users_by_segment('marked', 'day', ['is_new'])}"
    ).fetchall()
    expanded = by_segment("given", "user_id, day, is_new")
    plain = connection.execute(
        f"""
        SELECT segment, day, count(*) AS users, sum(is_new) AS is_new
        FROM (SELECT DISTINCT segment, user_id, day, is_new FROM {expanded}) AS members
        GROUP BY segment, day
        """
    ).fetchall()

    # THEN both give the same users and new users per segment and day
    assert sorted(counted) == sorted(plain)


@pytest.mark.parametrize("rows", ROWS.values(), ids=ROWS.keys())
def test_per_user_by_segment_aggregates_what_grouping_every_segment_aggregates(rows):
    # GIVEN one row per user, os and region (the rows above summed over their days)
    connection = _connection(rows)
    connection.execute(
        "CREATE TABLE combos AS SELECT user_id, os, region, sum(day) AS days, max(is_new) AS is_new"
        " FROM given GROUP BY user_id, os, region"
    )
    connection.execute("DROP TABLE given")
    connection.execute("ALTER TABLE combos RENAME TO given")
    aggregates = {"days": "sum(days)", "is_new": "max(is_new)"}

    # WHEN they are aggregated per segment and user by per_user_by_segment and by a plain GROUP BY
    aggregated = connection.execute(
        f"{MARKED} SELECT segment, user_id, days, is_new FROM {per_user_by_segment('marked', aggregates)}"
    ).fetchall()
    plain = connection.execute(
        f"""
        SELECT segment, user_id, sum(days), max(is_new)
        FROM {by_segment("given", "user_id, days, is_new")} AS expanded
        GROUP BY segment, user_id
        """
    ).fetchall()

    # THEN both give the same rows
    assert sorted(aggregated) == sorted(plain)


FIRST = date(2026, 3, 1)
DAY_SETS = {
    "none": [],
    "one day": [FIRST],
    "a range": [FIRST + timedelta(days=n) for n in range(10)],
    "days with gaps": [FIRST, FIRST + timedelta(days=7), FIRST + timedelta(days=30)],
}


@pytest.mark.parametrize("days", DAY_SETS.values(), ids=DAY_SETS.keys())
def test_on_days_selects_exactly_the_listed_days(days):
    # GIVEN consecutive days around them
    connection = duckdb.connect()
    connection.execute(
        f"CREATE TABLE calendar AS SELECT DATE '{FIRST}' + CAST(n AS INTEGER) AS day"
        " FROM range(-2, 40) AS t(n)"
    )

    # WHEN they are filtered with _on_days
    selected = connection.execute(f"SELECT day FROM calendar WHERE {_on_days('day', days)}").fetchall()

    # THEN exactly the listed days remain
    assert sorted(day for (day,) in selected) == sorted(days)
