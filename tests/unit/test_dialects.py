"""The Athena SQL of every metric definition: generated from the same definitions (sqlglot), kept as
golden files, parsed back as Trino, and free of the constructs that would change a result there.

After a change to a definition, rewrite the golden files and review their diff:

    MINIDRAMA_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_dialects.py
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from minidrama.metrics.definitions import DEFINITIONS
from minidrama.metrics.dialects import UntranslatableSql, definition_queries, shared_queries, transpile
from minidrama.metrics.period import Period

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "athena"
PERIODS = {
    "day-2026-11-28": Period.day(date(2026, 11, 28)),
    "range-2026-10-28-2026-11-03": Period.range(date(2026, 10, 28), date(2026, 11, 3)),
}


def _athena_queries(period: Period) -> dict[str, str]:
    """The shared relations (in build order), then every definition's queries."""
    shared = {f"shared.{name}": query for name, query in shared_queries(period, "athena").items()}
    definitions = {
        f"{definition}.{name}": query
        for (definition, name), query in sorted(definition_queries(period, "athena").items())
    }
    return shared | definitions


def _golden_text(period: Period) -> str:
    return "\n".join(f"-- {key}\n{query};\n" for key, query in _athena_queries(period).items())


@pytest.mark.parametrize("label", sorted(PERIODS))
def test_the_athena_sql_is_the_golden_file(label: str) -> None:
    path = GOLDEN / f"{label}.sql"
    generated = _golden_text(PERIODS[label])
    if os.environ.get("MINIDRAMA_UPDATE_GOLDEN"):
        path.write_text(generated)
    assert path.exists(), f"no golden file {path}: run with MINIDRAMA_UPDATE_GOLDEN=1"
    assert generated == path.read_text(), (
        f"the Athena SQL of {label} changed: rewrite {path} with MINIDRAMA_UPDATE_GOLDEN=1, review the diff"
    )


@pytest.mark.parametrize("label", sorted(PERIODS))
def test_every_athena_query_parses_as_trino_without_approximate_or_untyped_constructs(label: str) -> None:
    queries = _athena_queries(PERIODS[label])
    assert len(queries) >= len(DEFINITIONS) + 2
    for key, query in queries.items():
        tree = sqlglot.parse_one(query, read="athena")  # raises on SQL Trino's grammar refuses
        functions = {node.sql_name().upper() for node in tree.find_all(exp.Func)}
        assert not functions & {"APPROX_PERCENTILE", "PERCENTILE_CONT", "MEDIAN"}, key
        for row in tree.find_all(exp.Anonymous):
            if row.name.upper() == "ROW":  # a record: a ROW cast to its named fields
                assert isinstance(row.parent, exp.Cast), f"{key}: an untyped ROW loses its field names"


def test_the_athena_median_is_exact_as_duckdbs() -> None:
    # GIVEN groups of odd and even counts, with nulls, and one of nulls only
    connection = duckdb.connect()
    connection.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES ('odd', 3), ('odd', 1), ('odd', 2), ('even', 4),"
        " ('even', 1), ('even', 10), ('even', 2), ('even', NULL), ('one', 7), ('none', NULL)) AS v(k, v)"
    )
    query = "SELECT k, median(CAST(v AS DOUBLE)) AS m FROM t GROUP BY k"
    # WHEN the Athena form of the median is read back into DuckDB's SQL and run
    athena = transpile(query, "athena")
    assert "ARRAY_SORT" in athena and "ELEMENT_AT" in athena
    round_trip = sqlglot.transpile(athena, read="athena", write="duckdb")[0]
    # THEN it gives DuckDB's exact median: the middle value, the mean of the middle two, NULL for none
    expected = dict(connection.execute(query).fetchall())
    assert expected == {"odd": 2.0, "even": 3.0, "one": 7.0, "none": None}
    assert dict(connection.execute(round_trip).fetchall()) == expected


def test_a_record_becomes_a_row_cast_to_its_named_fields() -> None:
    query = (
        "SELECT max_by(v, {'time': CAST(t AS TIMESTAMP WITH TIME ZONE), 'event_id': CAST(e AS VARCHAR)})"
        " FROM x"
    )
    athena = transpile(query, "athena")
    # (a UTC instant is a plain timestamp on Athena, which writes no zoned timestamp to Parquet)
    assert "CAST(ROW(" in athena and "AS ROW(time TIMESTAMP, event_id VARCHAR)" in athena
    assert "WITH TIME ZONE" not in athena
    # a field without a type cannot be typed on Trino: refused, never generated untyped
    with pytest.raises(UntranslatableSql, match="CAST"):
        transpile("SELECT {'a': b} FROM x", "athena")


def test_an_unknown_dialect_is_named() -> None:
    with pytest.raises(ValueError, match="unknown dialect 'oracle'"):
        transpile("SELECT 1", "oracle")
