"""The DuckDB baseline of `minidrama ingest`: one SQL statement from an NDJSON file to hour partitions.

What the issue "Ingest at the speed of the hardware" compares the CLI's bulk path with: DuckDB
reads the file typed (``read_json`` with explicit columns, every field read as ``JSON`` so that
its JSON type can be checked, not coerced), checks the main rules of SPEC section 4, keeps the
first copy of each ``event_id`` and writes zstd Parquet partitioned by UTC date and hour
(``COPY ... (FORMAT parquet, PARTITION_BY (dt, hour), COMPRESSION zstd)``) into
``OUT_DIR/events/app_id=APP/dt=YYYY-MM-DD/hour=HH/``, in the columns of
:data:`minidrama.schema.EVENT_COLUMNS`.

Checked (an event failing any is dropped):

- ``event_id``, ``user_id`` strings of 1-128 characters; ``session_id`` the same, required for
  ``app_launch`` and ``session_end``; ``os`` a string of 1-32 characters, stored lower-cased;
- ``event_name`` a string matching ``^[a-z][a-z0-9_]{0,63}$``;
- ``event_time`` an RFC 3339 string with an offset, parsed as ``timestamptz``, not more than 24 h
  after the receipt time (``--received-at``, default now);
- ``region`` any case of an ISO 3166-1 alpha-2 code of :data:`minidrama.iso_codes.COUNTRY_CODES`,
  stored upper-cased;
- ``properties`` absent, null or an object; the typed properties of ``app_launch``,
  ``session_end``, ``recharge_order`` and ``redeem_order`` of the right JSON type (strings of
  1-128 or at most 128 characters, integers 0 to 2**63 - 1, ``success`` a boolean defaulting to
  true, ``amount`` a number > 0 and <= 10**12, ``currency`` an ISO 4217 code) and present where
  required, extracted into their columns; the other properties kept as compact JSON text
  (``"{}"`` when none).

It is a baseline, not a second implementation: it drops the rows that fail with no quarantine
and no reasons, and it leaves out the finer rules: integral floats (``5.0``) are not integers
here, amounts with more than 6 decimal places are rounded instead of rejected, amounts convert
only when their currency is the reporting one (``--currency``, as on a lake without configured
rates; others are dropped), lone surrogates and the 32,768-character limit of ``properties`` are
not checked, leap seconds and fractions beyond microseconds are whatever DuckDB's cast makes of
them, the kept ``properties`` keys are not sorted, and rows within a file are in no particular
order (minidrama sorts them by event time and id). The first copy of an ``event_id`` is the
first in file order among the valid ones, as in the CLI.

Usage: .venv/bin/python bench/ingest_duckdb_baseline.py FILE OUT_DIR [--threads N] [--json]
           [--received-at 2026-11-28T12:00:00Z] [--app bench-app] [--currency USD] [--sql]

Prints the rows read (non-blank lines), the rows written and the seconds of the statement (the
line count is done afterwards and not included), or all that as one JSON object with ``--json``;
``--sql`` prints the statement instead of running it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from minidrama.iso_codes import COUNTRY_CODES, CURRENCY_CODES
from minidrama.schema import EVENT_COLUMNS, KNOWN_PROPERTIES

MAX_ID = 128
MAX_OS = 32
MAX_TEXT = 128
MAX_INT = 2**63 - 1
MAX_AMOUNT = 10**12

# Every top-level field is read as JSON, so that its type can be checked (a VARCHAR column would
# quietly turn 42 into '42').
FIELDS = ("event_id", "event_name", "event_time", "user_id", "session_id", "os", "region", "properties")
TYPED = sorted({key for keys in KNOWN_PROPERTIES.values() for key in keys})  # one extraction per row
RFC3339 = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _in_list(codes: frozenset[str]) -> str:
    return "(" + ", ".join(_quoted(code) for code in sorted(codes)) + ")"


def _prop(key: str) -> str:
    """The typed property ``key`` as a JSON value (NULL when absent or null)."""
    return f"p[{TYPED.index(key) + 1}]"


def _string(value: str, low: int, high: int) -> str:
    """A condition: ``value`` (JSON) is a string of ``low`` to ``high`` characters."""
    return f"(json_type({value}) = 'VARCHAR' AND length({value} ->> '$') BETWEEN {low} AND {high})"


def _optional_string(value: str, low: int, high: int) -> str:
    return f"({value} IS NULL OR {_string(value, low, high)})"


def _integer(value: str) -> str:
    """A condition: ``value`` (JSON) is an integer 0 <= n <= 2**63 - 1."""
    return f"(json_type({value}) = 'UBIGINT' AND try_cast({value} ->> '$' AS BIGINT) IS NOT NULL)"


def _optional_integer(value: str) -> str:
    return f"({value} IS NULL OR {_integer(value)})"


def _rest_of(name: str) -> str:
    """The properties of a ``name`` event without its typed ones (a merge patch of nulls removes them)."""
    patch = json.dumps(dict.fromkeys(KNOWN_PROPERTIES[name]), separators=(",", ":"))
    return f"json_merge_patch(properties, {_quoted(patch)})"


def build_query(path: str, out: str, received_at: datetime, currency: str) -> str:
    received = _quoted(received_at.astimezone(UTC).isoformat())
    columns = "{" + ", ".join(f"{name}: 'JSON'" for name in FIELDS) + "}"
    paths = "[" + ", ".join(_quoted(f"$.{key}") for key in TYPED) + "]"
    launch_texts = ("device_brand", "device_model", "tiktok_version", "gender", "age_group")
    rules = {
        "app_launch": " AND ".join(
            [
                _string(_prop("entry_point"), 1, MAX_ID),
                f"({_prop('success')} IS NULL OR json_type({_prop('success')}) = 'BOOLEAN')",
                _optional_integer(_prop("launch_ms")),
                *(_optional_string(_prop(key), 0, MAX_TEXT) for key in launch_texts),
            ]
        ),
        "session_end": _integer(_prop("duration_ms")),
        "recharge_order": " AND ".join(
            [
                _string(_prop("order_id"), 1, MAX_ID),
                f"json_type({_prop('amount')}) IN ('UBIGINT', 'DOUBLE')",
                f"try_cast({_prop('amount')} ->> '$' AS DOUBLE) > 0",
                f"try_cast({_prop('amount')} ->> '$' AS DOUBLE) <= {MAX_AMOUNT}",
                f"json_type({_prop('currency')}) = 'VARCHAR'",
                f"upper({_prop('currency')} ->> '$') IN {_in_list(CURRENCY_CODES)}",
                f"upper({_prop('currency')} ->> '$') = {_quoted(currency)}",  # no rates: only the base
                _optional_integer(_prop("beans")),
                _optional_string(_prop("product_id"), 1, MAX_ID),
            ]
        ),
        "redeem_order": " AND ".join(
            [
                _string(_prop("order_id"), 1, MAX_ID),
                _string(_prop("product_id"), 1, MAX_ID),
                _integer(_prop("beans")),
            ]
        ),
    }
    properties_rule = "CASE event_name " + " ".join(f"WHEN '{n}' THEN {r}" for n, r in rules.items())
    properties_rule += " ELSE true END"
    rest = (
        "CASE event_name "
        + " ".join(f"WHEN '{n}' THEN {_rest_of(n)}" for n in rules)
        + " ELSE properties END"
    )

    def typed(key: str, sql_type: str, names: tuple[str, ...]) -> str:
        value = f"{_prop(key)} ->> '$'"
        cast = f"CAST({value} AS {sql_type})" if sql_type != "VARCHAR" else value
        return f"CASE WHEN event_name IN ({', '.join(map(_quoted, names))}) THEN {cast} END AS {key}"

    orders = ("recharge_order", "redeem_order")
    extracted = {
        "entry_point": typed("entry_point", "VARCHAR", ("app_launch",)),
        "success": (
            f"CASE WHEN event_name = 'app_launch' THEN coalesce(CAST({_prop('success')} ->> '$' AS BOOLEAN),"
            " true) END AS success"
        ),
        "launch_ms": typed("launch_ms", "BIGINT", ("app_launch",)),
        **{key: typed(key, "VARCHAR", ("app_launch",)) for key in launch_texts},
        "duration_ms": typed("duration_ms", "BIGINT", ("session_end",)),
        "order_id": typed("order_id", "VARCHAR", orders),
        "amount": (
            f"CASE WHEN event_name = 'recharge_order' THEN CAST({_prop('amount')} ->> '$' AS DECIMAL(38, 6))"
            " END AS amount"
        ),
        "original_amount": (
            f"CASE WHEN event_name = 'recharge_order' THEN CAST({_prop('amount')} ->> '$' AS DECIMAL(38, 6))"
            " END AS original_amount"
        ),
        "currency": (
            f"CASE WHEN event_name = 'recharge_order' THEN upper({_prop('currency')} ->> '$') END AS currency"
        ),
        "beans": typed("beans", "BIGINT", orders),
        "product_id": typed("product_id", "VARCHAR", orders),
    }
    top = {
        "event_id": "event_id",
        "event_name": "event_name",
        "event_time": "event_timestamp AS event_time",
        "received_at": f"TIMESTAMPTZ {received} AS received_at",
        "user_id": "user_id",
        "session_id": "session_id",
        "os": "lower(os) AS os",
        "region": "upper(region) AS region",
        "properties": f"coalesce(CAST(json({rest}) AS VARCHAR), '{{}}') AS properties",
    }
    selected = ",\n        ".join(top.get(name) or extracted[name] for name, _kind in EVENT_COLUMNS)
    strings = ", ".join(
        f"CASE WHEN json_type({name}) = 'VARCHAR' THEN {name} ->> '$' END AS {name}" for name in FIELDS[:-1]
    )
    return f"""
COPY (
    WITH raw AS (
        SELECT row_number() OVER () AS line, *
        FROM read_json({_quoted(path)}, format = 'newline_delimited', columns = {columns},
                       ignore_errors = true, maximum_object_size = 1048576)
    ),
    typed AS (
        SELECT line, {strings},
            raw.session_id IS NULL AS no_session, json_type(properties) AS properties_type,
            properties, json_extract(properties, {paths}) AS p
        FROM raw
    ),
    valid AS (
        SELECT *,
            CASE WHEN regexp_full_match(event_time, {_quoted(RFC3339)})
                 THEN try_cast(event_time AS TIMESTAMPTZ) END AS event_timestamp
        FROM typed
        WHERE length(event_id) BETWEEN 1 AND {MAX_ID}
          AND regexp_full_match(event_name, '[a-z][a-z0-9_]{{0,63}}')
          AND event_timestamp <= TIMESTAMPTZ {received} + INTERVAL 24 HOUR
          AND length(user_id) BETWEEN 1 AND {MAX_ID}
          AND (no_session AND event_name NOT IN ('app_launch', 'session_end')
               OR length(session_id) BETWEEN 1 AND {MAX_ID})
          AND length(os) BETWEEN 1 AND {MAX_OS}
          AND upper(region) IN {_in_list(COUNTRY_CODES)}
          AND (properties IS NULL OR properties_type = 'OBJECT')
          AND ({properties_rule})
        QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY line) = 1
    )
    SELECT {selected},
        strftime(event_timestamp, '%Y-%m-%d') AS dt,
        lpad(CAST(hour(event_timestamp) AS VARCHAR), 2, '0') AS hour
    FROM valid
) TO {_quoted(out)} (FORMAT parquet, PARTITION_BY (dt, hour), COMPRESSION zstd)
"""


def count_lines(path: Path) -> int:
    """Non-blank lines, as `minidrama ingest` counts its input."""
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _timestamp(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no offset")
    return moment


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="NDJSON events, one per line")
    parser.add_argument("out", type=Path, metavar="OUT_DIR", help="where to write events/app_id=APP/...")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's, one per core)")
    parser.add_argument("--received-at", type=_timestamp, default=None, help="receipt time (default now)")
    parser.add_argument("--app", default="bench-app", help="the app_id of the output path")
    parser.add_argument("--currency", default="USD", help="the reporting currency")
    parser.add_argument("--sql", action="store_true", help="print the statement and exit")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args()
    received_at = args.received_at or datetime.now(UTC)
    target = args.out / "events" / f"app_id={args.app}"
    query = build_query(str(args.file), str(target), received_at, args.currency.upper())
    if args.sql:
        print(query)
        return 0
    if not args.file.is_file():
        print(f"ingest_duckdb_baseline: {args.file} is not a file", file=sys.stderr)
        return 2
    target.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    if args.threads:
        connection.execute(f"SET threads = {int(args.threads)}")
    written = connection.execute(query).fetchone()
    seconds = time.perf_counter() - started
    rows_out = int(written[0]) if written else 0
    rows_in = count_lines(args.file)
    files = sorted(str(path.relative_to(args.out)) for path in target.rglob("*.parquet"))
    result = {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "dropped": rows_in - rows_out,
        "seconds": round(seconds, 4),
        "files": len(files),
        "threads": int(connection.execute("SELECT current_setting('threads')").fetchone()[0]),  # type: ignore[index]
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{rows_in:,} rows in, {rows_out:,} rows out ({rows_in - rows_out:,} dropped), "
            f"{len(files)} Parquet files, {seconds:.2f} s ({result['threads']} threads)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
