"""The metric definitions' SQL for other engines, generated from the same definitions.

The definitions (:mod:`minidrama.metrics.definitions`) write DuckDB SQL in a portable subset; this
module parses it with sqlglot and writes it in another engine's dialect, so that the SQL of a
metric is never written twice. sqlglot translates the functions and types; the few constructs
whose translation would change a result are rewritten here, per engine:

``athena`` (Trino)
    ``median`` becomes an exact median of the sorted values (Trino's ``approx_percentile`` is
    approximate, and it has no ``percentile_cont``); a record literal becomes
    ``CAST(ROW(...) AS ROW(name type, ...))``, so that its fields keep their names (every field of
    a record is a ``CAST``, which gives its type); ``timestamp with time zone`` becomes
    ``timestamp`` (UTC instants, as the lake's tables hold them; Athena writes no other to Parquet).
``spark``
    nothing beyond sqlglot's translation (``median`` is exact in Spark; records are ``STRUCT``).

What is proved, and how: the Spark SQL runs on the test lakes in ``make test-engines`` and must give
the same rows and documents as DuckDB; the Athena SQL is kept as golden files and parsed back in
``make test`` (README, "The same definitions on other engines").
"""

from __future__ import annotations

from sqlglot import exp, parse_one

from minidrama.metrics.definitions import DEFINITIONS, shared_relations
from minidrama.metrics.period import Period

__all__ = ["DIALECTS", "UntranslatableSql", "transpile", "definition_queries"]

DIALECTS = ("athena", "spark")


class UntranslatableSql(ValueError):
    """A construct of a definition's SQL that would not mean the same on the target engine."""


def transpile(query: str, dialect: str) -> str:
    """``query`` (DuckDB SQL of the definitions) in ``dialect`` (one of :data:`DIALECTS`)."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; one of {', '.join(DIALECTS)}")
    tree = parse_one(query, read="duckdb")
    if dialect == "athena":
        tree = tree.transform(_for_trino).transform(_utc_timestamp)
    return tree.sql(dialect=dialect, pretty=True)


def shared_queries(period: Period, dialect: str) -> dict[str, str]:
    """The relations the definitions share for ``period``
    (:func:`~minidrama.metrics.definitions.shared_relations`) in ``dialect``, in build order."""
    return {name: transpile(query, dialect) for name, query in shared_relations(period).items()}


def definition_queries(period: Period, dialect: str) -> dict[tuple[str, str], str]:
    """Every definition's queries for ``period`` in ``dialect``, keyed as
    :func:`minidrama.metrics.engine.run_definitions` keys their results."""
    return {
        (definition.name, name): transpile(query, dialect)
        for definition in DEFINITIONS
        for name, query in definition.queries(period).items()
    }


def _for_trino(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Median):
        return _exact_median(node.this)
    if isinstance(node, exp.Struct):
        return _typed_row(node)
    return node


def _utc_timestamp(node: exp.Expression) -> exp.Expression:
    # Athena's tables hold UTC instants as `timestamp` and its session time zone is UTC, so the
    # two types compare and order alike; Athena cannot write `timestamp with time zone` to
    # Parquet (CREATE TABLE AS, UNLOAD), which the Athena engine does with every result.
    if isinstance(node, exp.DataType) and node.is_type(exp.DataType.Type.TIMESTAMPTZ):
        return exp.DataType.build("TIMESTAMP")
    return node


def _exact_median(value: exp.Expression) -> exp.Expression:
    """The mean of the two middle values of the sorted non-null values (the one middle value, twice,
    for an odd count); NULL for none: DuckDB's exact ``median``."""
    values = exp.func(
        "array_sort", exp.Filter(this=exp.ArrayAgg(this=value.copy()), expression=_where_not_null(value))
    )
    count = exp.Count(this=value.copy())
    low = exp.func(
        "element_at", values, exp.cast(exp.IntDiv(this=count + 1, expression=exp.Literal.number(2)), "BIGINT")
    )
    high = exp.func(
        "element_at",
        values.copy(),
        exp.cast(exp.IntDiv(this=count.copy(), expression=exp.Literal.number(2)) + 1, "BIGINT"),
    )
    mean = exp.Div(this=exp.paren(low + high), expression=exp.Literal.number("2.0"))
    return exp.Case(ifs=[exp.If(this=count.copy().eq(0), true=exp.null())], default=mean)


def _where_not_null(value: exp.Expression) -> exp.Where:
    return exp.Where(this=exp.Not(this=exp.Is(this=value.copy(), expression=exp.null())))


def _typed_row(struct: exp.Struct) -> exp.Expression:
    """A record literal as a ROW cast to its named, typed fields."""
    names: list[str] = []
    values: list[exp.Expression] = []
    types: list[exp.DataType] = []
    for field in struct.expressions:
        if not isinstance(field, exp.PropertyEQ) or not isinstance(field.expression, exp.Cast):
            raise UntranslatableSql(
                "a record field must be `'name': CAST(value AS type)` to be typed on Trino: "
                + field.sql("duckdb")
            )
        names.append(field.this.name)
        values.append(field.expression)
        types.append(field.expression.to)
    row_type = exp.DataType(
        this=exp.DataType.Type.STRUCT,
        expressions=[
            exp.ColumnDef(this=exp.to_identifier(name), kind=kind.copy())
            for name, kind in zip(names, types, strict=True)
        ],
        nested=True,
    )
    return exp.Cast(this=exp.func("ROW", *values), to=row_type)
