"""Metrics documents as CSV (SPEC 7.3): every scalar of a document, and daily series (pure).

- :func:`document_csv`: one row per scalar value of a document, ``segment,module,metric,key,value``
  (``key`` is the rest of the path joined with ``.``, list items by index; ``null`` is empty).
- :func:`series_csv`: daily documents as one row per day and one column per metric path
  (``module.metric.key``), the data behind a line chart.

Both are RFC 4180 (CRLF line ends, quoting where needed), UTF-8, with a header row.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import Any

from minidrama.metrics.exceptions import UnknownMetric, UnknownSegment

__all__ = ["document_rows", "document_csv", "segment_paths", "series_csv", "DOCUMENT_CSV_HEADER"]

DOCUMENT_CSV_HEADER = ("segment", "module", "metric", "key", "value")
# Breakdowns whose keys are values seen in the data (a user's gender, a product id): they are not
# series a chart follows day by day, so a series names them only when asked (--metric).
_BREAKDOWNS = frozenset(("profile", "device", "entry_points"))
_LISTS_OF_VALUES = frozenset(("top_redeemed_products",))


def _flatten(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flatten(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _flatten(item, (*path, str(index)))
    else:
        yield path, value


def cell(value: Any) -> str:
    """A scalar as CSV text: empty for null, JSON spelling for numbers and booleans."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def document_rows(document: Mapping[str, Any]) -> Iterator[tuple[str, str, str, str, Any]]:
    """(segment, module, metric, key, value) for every scalar value of the document's segments."""
    for segment, modules in document["segments"].items():
        for path, value in _flatten(modules):
            module, metric, *rest = path
            yield segment, module, metric, ".".join(rest), value


def _write(rows: Iterator[Sequence[str]] | list[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(rows)
    return buffer.getvalue()


def document_csv(document: Mapping[str, Any]) -> str:
    """The document as ``segment,module,metric,key,value`` rows."""
    rows = (
        (segment, module, metric, key, cell(value))
        for segment, module, metric, key, value in document_rows(document)
    )
    return _write([DOCUMENT_CSV_HEADER, *rows])


def segment_paths(segment: Mapping[str, Any]) -> dict[str, Any]:
    """Every scalar of one segment by its path ``module.metric.key``."""
    return {".".join(path): value for path, value in _flatten(segment)}


def _is_series(path: str, value: Any) -> bool:
    parts = path.split(".")
    if parts[0] in _BREAKDOWNS or _LISTS_OF_VALUES & set(parts):
        return False
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def series_csv(
    documents: Mapping[date, Mapping[str, Any]], segment: str = "all", metrics: Sequence[str] = ()
) -> str:
    """One row per day (in date order), one column per metric path of ``segment``.

    ``metrics`` are paths or path prefixes (``dashboard`` selects every dashboard column); by
    default every numeric series (breakdowns by data values are left out). A day on which the
    segment has no events has empty cells, as has a breakdown value absent on a day.
    """
    per_day = {
        day: segment_paths(document["segments"][segment])
        for day, document in documents.items()
        if segment in document["segments"]
    }
    if not per_day:
        raise UnknownSegment(f"segment {segment!r} has no events on any of these days")
    known: dict[str, None] = {}
    for paths in per_day.values():
        known.update(dict.fromkeys(paths))
    if metrics:
        columns: list[str] = []
        for wanted in metrics:
            matching = [path for path in known if path == wanted or path.startswith(wanted + ".")]
            if not matching:
                raise UnknownMetric(
                    f"metric {wanted!r} names no value of the documents; e.g. dashboard.active_users,"
                    " iap_orders.all.gmv, retention.new.d1.rate, funnel.recharge.8.pv"
                )
            columns.extend(path for path in matching if path not in columns)
    else:
        columns = [
            path
            for path in known
            if all(_is_series(path, paths[path]) for paths in per_day.values() if path in paths)
        ]
    rows = [
        (day.isoformat(), *(cell(per_day.get(day, {}).get(column)) for column in columns))
        for day in sorted(documents)
    ]
    return _write([("date", *columns), *rows])
