"""The metric definitions, transpiled to Spark SQL (``minidrama.metrics.dialects``), give on Spark
the rows and the documents DuckDB gives, value by value (``make test-engines``: needs pyspark and a
Java runtime, which ``make setup-engines`` installs; not part of the 10-minute ``make test``).

On the daily differential test's random realistic event sets (``scenarios``: ~35 days, four time
zones, re-sent events and orders, failed launches, DST), every day is computed by the product as
usual. Each time the definitions run (the scenario's computed days, then two ranges: the whole
history and a week across a month end), the relations they read are taken from DuckDB, loaded into
Spark, and every definition's query runs there too: its rows must equal DuckDB's, and the document
assembled from them by the same code must equal the product's document.

What this proves: the definitions' SQL means the same on a second engine of another family
(Spark's analyzer, its types, its aggregates, its null handling), through the same sqlglot
translation the Athena SQL takes. What it does not: the facts building and the state (the SQL of
``minidrama.metrics.sql`` and ``facts``) runs on DuckDB here; and Trino's own semantics (README).
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlglot
from hypothesis import HealthCheck, Phase, given, settings
from sqlglot import exp

from minidrama.config import AppConfig
from minidrama.lake import LocalStorage
from minidrama.metrics import compute_days, engine, ranges
from minidrama.metrics.dialects import definition_queries, shared_queries
from minidrama.metrics.document import build_document
from minidrama.metrics.period import Period
from tests.functional.test_metrics_oracle import ALL_DAYS, FIRST_DAY, LAST_DAY, scenarios
from tests.functional.test_range_oracle import MONTH_END_WEEK
from tests.metrics_support import ingest, query

GENERATED_AT = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("minidrama-definitions")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("OFF")
    yield session
    session.stop()


def relations_read(queries: Iterable[str]) -> set[str]:
    """The relations the queries read (their tables that are not their own CTEs)."""
    names: set[str] = set()
    for sql in queries:
        tree = sqlglot.parse_one(sql, read="spark")
        own = {cte.alias for cte in tree.find_all(exp.CTE)}
        names |= {table.name for table in tree.find_all(exp.Table)} - own
    return names


def comparable(value: Any) -> Any:
    """A value as both engines give it: Spark's timestamps are naive UTC, its rows dicts; floats to
    12 significant digits (an average or a median of the same numbers summed in another order)."""
    if isinstance(value, dict):
        return tuple(sorted((key, comparable(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(comparable(item) for item in value)
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def rows_as_multiset(rows: list[dict[str, Any]]) -> list[Any]:
    return sorted((comparable(row) for row in rows), key=repr)


class SparkCheck:
    """Runs each period's definitions on Spark beside DuckDB (wraps ``run_definitions``)."""

    def __init__(self, spark: Any, app: AppConfig) -> None:
        self.spark, self.app = spark, app
        self.periods: set[tuple[date, date]] = set()  # the periods to check
        self.checked: list[Period] = []
        self._run = engine.run_definitions

    def __call__(self, connection: Any, period: Period) -> dict[tuple[str, str], list[dict[str, Any]]]:
        results = self._run(connection, period)
        if (period.first, period.last) in self.periods:
            self.check(connection, period, results)
        return results

    def check(
        self, connection: Any, period: Period, results: dict[tuple[str, str], list[dict[str, Any]]]
    ) -> None:
        queries = definition_queries(period, "spark")
        shared = shared_queries(period, "spark")
        workdir = Path(tempfile.mkdtemp(prefix="spark-relations-"))
        try:
            # the relations DuckDB was given, then the shared ones built by Spark from them
            read = relations_read([*queries.values(), *shared.values()])
            for name in sorted(read - set(shared)):
                path = workdir / f"{name}.parquet"
                pq.write_table(connection.sql(f"SELECT * FROM {name}").to_arrow_table(), path)
                self.spark.read.parquet(str(path)).createOrReplaceTempView(name)
            for name, sql in shared.items():
                self.spark.sql(sql).createOrReplaceTempView(name)
            spark_results = {
                key: [row.asDict(recursive=True) for row in self.spark.sql(sql).collect()]
                for key, sql in queries.items()
            }
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        where = f"{period.kind} {period.first}..{period.last} ({self.app.timezone})"
        for key, rows in results.items():
            assert rows_as_multiset(spark_results[key]) == rows_as_multiset(rows), f"{where}: {key}"
        documents = [
            build_document(
                app_id=self.app.app_id,
                period=period,
                timezone=self.app.timezone,
                currency=self.app.currency,
                generated_at=GENERATED_AT,
                results=engine_results,
            )
            for engine_results in (results, spark_results)
        ]
        assert documents[1] == documents[0], where
        self.checked.append(period)


# Each scenario takes one to two minutes of Spark on two cores: the whole test gets its own timeout
# (the suite's 300 s is per test, and three scenarios can pass it on a slow machine), and a failing
# scenario is reported as found, not shrunk (shrinking would rerun Spark for each smaller case).
@pytest.mark.timeout(int(os.environ.get("MINIDRAMA_SPARK_TIMEOUT", "1800")))
@settings(
    max_examples=int(os.environ.get("MINIDRAMA_SPARK_EXAMPLES", "3")),
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(scenario=scenarios())
def test_spark_gives_the_rows_and_documents_duckdb_gives(spark, scenario, monkeypatch):
    # GIVEN a lake of random realistic events, and Spark running the definitions beside DuckDB
    events, zone_name, currency, days, _one_call = scenario
    app = AppConfig("app", timezone=zone_name, currency=currency)
    check = SparkCheck(spark, app)
    monkeypatch.setattr(engine, "run_definitions", check)
    monkeypatch.setattr(ranges, "run_definitions", check)
    root = Path(tempfile.mkdtemp(prefix="spark-lake-"))
    try:
        lake = LocalStorage(root)
        ingest(lake, copy.deepcopy(events), app)
        # WHEN every day is computed (the scenario's days checked on Spark) and two ranges queried
        check.periods = {(day, day) for day in days} | {(FIRST_DAY, LAST_DAY), MONTH_END_WEEK}
        compute_days(lake, app, ALL_DAYS)
        for first, last in [(FIRST_DAY, LAST_DAY), MONTH_END_WEEK]:
            query(lake, first, last, app)
        # THEN each of them was checked: the same rows of every query, the same document
        assert {(period.first, period.last) for period in check.checked} == check.periods
    finally:
        shutil.rmtree(root, ignore_errors=True)
