"""Compaction of hour partitions, and the rule readers use to see each partition whole.

The writer adds one small Parquet file per partition per SQS batch. Compaction rewrites a
partition into one file, each ``event_id`` once (its first-received copy), in three steps:

1. write ``compacted-{uuid}.parquet``: readers ignore a ``compacted-*`` file until a manifest
   names it, so a half-done compaction is invisible;
2. write ``_compaction.json`` = ``{"compacted": key, "replaces": [keys]}``: the switch. From now on
   readers read the compacted file and skip the files it replaces;
3. delete the replaced files.

A reader therefore sees either the old files or the compacted one, never both and never part of
one. The manifest is only fetched when a listing is ambiguous (a compacted file beside other
files, or several compacted files), so the common case costs one listing. Files whose name
starts with ``_`` or ``.`` are not data (Hive and Athena skip them too).

Every events file must have exactly the columns of :data:`minidrama.schema.EVENT_COLUMNS`, with
their types: :func:`check_event_files` refuses one that does not, or that DuckDB cannot read, with
:class:`~minidrama.metrics.exceptions.UnreadableEvents` naming it, so that neither compaction nor
the metrics ever skip its events quietly (or compact them away).
"""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from minidrama.lake import NotFoundError, ObjectInfo, Storage, events_partition
from minidrama.metrics.exceptions import UnreadableEvents
from minidrama.metrics.facts import SQL_TYPES
from minidrama.schema import EVENT_COLUMNS

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "event_files_by_partition",
    "readable_files",
    "compact_partition",
    "MANIFEST_NAME",
    "parquet_columns",
    "check_event_files",
    "unreadable_event_file",
]

MANIFEST_NAME = "_compaction.json"
COMPACTED_PREFIX = "compacted-"
_PARTITION = re.compile(r"events/app_id=[^/]+/dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/([^/]+)$")


def _name(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def readable_files(storage: Storage, listing: list[ObjectInfo]) -> list[ObjectInfo]:
    """The data files of one partition that a reader must read (see the module docstring)."""
    manifest_key = next((info.key for info in listing if _name(info.key) == MANIFEST_NAME), None)
    data = [
        info
        for info in listing
        if info.key.endswith(".parquet") and not _name(info.key).startswith(("_", "."))
    ]
    compacted = [info for info in data if _name(info.key).startswith(COMPACTED_PREFIX)]
    plain = [info for info in data if not _name(info.key).startswith(COMPACTED_PREFIX)]
    if not compacted:
        return plain
    if manifest_key is None:
        return plain  # compaction stopped before its switch: the compacted file is not live
    if len(compacted) == 1 and not plain:
        return compacted  # steady state after a finished compaction
    try:
        manifest = json.loads(storage.get_bytes(manifest_key))
    except NotFoundError:
        return plain
    replaced = set(manifest["replaces"])
    live = [info for info in compacted if info.key == manifest["compacted"]]
    return live + [info for info in plain if info.key not in replaced]


def event_files_by_partition(storage: Storage, app_id: str) -> dict[tuple[date, int], list[ObjectInfo]]:
    """Every hour partition of an app's events with the files a reader must read, from one listing."""
    grouped: dict[tuple[date, int], list[ObjectInfo]] = defaultdict(list)
    for info in storage.list(f"events/app_id={app_id}/"):
        match = _PARTITION.search(info.key)
        if match:
            grouped[(date.fromisoformat(match.group(1)), int(match.group(2)))].append(info)
    partitions = {}
    for partition, listing in grouped.items():
        files = readable_files(storage, listing)
        if files:
            partitions[partition] = files
    return partitions


def _finish_previous(storage: Storage, prefix: str, listing: list[ObjectInfo]) -> list[ObjectInfo]:
    """Delete what a previous compaction replaced but did not get to delete (it stopped after its
    switch). Left alone, those files would come back to life once a later manifest stops naming them."""
    keys = {info.key for info in listing}
    data_files = [key for key in keys if key.endswith(".parquet")]
    if prefix + MANIFEST_NAME not in keys or len(data_files) <= 1:
        return listing
    manifest = json.loads(storage.get_bytes(prefix + MANIFEST_NAME))
    leftovers = [key for key in manifest["replaces"] if key in keys]
    if not leftovers:
        return listing
    storage.delete(leftovers)
    return [info for info in listing if info.key not in set(leftovers)]


# --- what an events file must be ----------------------------------------------------------------


def _quote(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def parquet_columns(connection: duckdb.DuckDBPyConnection, path: Path) -> list[tuple[str, str]]:
    """(name, DuckDB type) of every column of a Parquet file, read from its footer."""
    cursor = connection.execute(
        f"DESCRIBE SELECT * FROM read_parquet({_quote(path)}, hive_partitioning = false)"
    )
    return [(str(row[0]), str(row[1])) for row in cursor.fetchall()]


def declared_columns(
    connection: duckdb.DuckDBPyConnection, columns: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """(name, DuckDB type) of ``columns`` (name, SQL type) as DuckDB spells the types, so that they
    compare with :func:`parquet_columns` (``DECIMAL(38, 6)`` is described as ``DECIMAL(38,6)``)."""
    select = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in columns)
    return [(str(row[0]), str(row[1])) for row in connection.execute(f"DESCRIBE SELECT {select}").fetchall()]


EVENTS_COLUMNS_SQL: tuple[tuple[str, str], ...] = tuple(
    (name, SQL_TYPES[kind]) for name, kind in EVENT_COLUMNS
)


def _column_difference(found: list[tuple[str, str]], expected: list[tuple[str, str]]) -> str:
    missing = ", ".join(f"{name} {kind}" for name, kind in expected if (name, kind) not in found)
    extra = ", ".join(f"{name} {kind}" for name, kind in found if (name, kind) not in expected)
    return "; ".join(part for part in (missing and f"lacks {missing}", extra and f"has {extra}") if part)


def check_event_files(connection: duckdb.DuckDBPyConnection, files: Mapping[str, Path]) -> None:
    """Raise :class:`UnreadableEvents` for the first of ``files`` (key -> local path) that DuckDB
    cannot open or whose columns are not the events columns."""
    import duckdb

    if not files:
        return
    expected = declared_columns(connection, EVENTS_COLUMNS_SQL)
    for key, path in files.items():
        try:
            found = parquet_columns(connection, path)
        except duckdb.Error as error:
            raise UnreadableEvents(key, f"is not a readable Parquet file ({_first_line(error)})") from error
        if sorted(found) != sorted(expected):
            raise UnreadableEvents(
                key, f"does not have the events columns ({_column_difference(found, expected)})"
            )


def unreadable_event_file(
    connection: duckdb.DuckDBPyConnection, files: Mapping[str, Path], error: Exception
) -> Exception:
    """After reading ``files`` together failed with ``error``: :class:`UnreadableEvents` naming the
    first file that fails a full read on its own, else ``error`` itself."""
    import duckdb

    for key, path in files.items():
        try:
            connection.execute(
                "CREATE OR REPLACE TEMP TABLE events_probe AS"
                f" SELECT * FROM read_parquet({_quote(path)}, hive_partitioning = false)"
            )
        except duckdb.Error as probe_error:
            return UnreadableEvents(key, f"cannot be read ({_first_line(probe_error)})")
        finally:
            connection.execute("DROP TABLE IF EXISTS events_probe")
    return error


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def compact_partition(storage: Storage, app_id: str, utc_date: date, hour: int) -> bool:
    """Rewrite one hour partition into a single file; returns whether anything was rewritten."""
    import duckdb  # the metrics function's engine; imported here so the listing needs no DuckDB

    prefix = events_partition(app_id, utc_date, hour)
    listing = _finish_previous(storage, prefix, storage.list(prefix))
    files = readable_files(storage, listing)
    if len(files) <= 1:
        return False
    with tempfile.TemporaryDirectory(prefix="minidrama-compact-") as workdir:
        local = {info.key: storage.local_copy(info.key, Path(workdir) / "in") for info in files}
        target = Path(workdir) / "compacted.parquet"
        sources = ", ".join(_quote(path) for path in local.values())
        connection = duckdb.connect()
        try:
            connection.execute("SET TimeZone = 'UTC'")
            # A file that is not an events file must stop the compaction: compacted, its rows
            # would be dropped or nulled, and the file itself deleted.
            check_event_files(connection, local)
            try:
                connection.execute(
                    f"""
                    COPY (
                        SELECT * EXCLUDE (copy_number) FROM (
                            SELECT *, row_number() OVER (
                                PARTITION BY event_id ORDER BY received_at, event_time, event_name, user_id
                            ) AS copy_number
                            FROM read_parquet([{sources}], hive_partitioning = false, union_by_name = true)
                        ) AS copies
                        WHERE copy_number = 1
                        ORDER BY event_time, event_id
                    ) TO {_quote(target)} (FORMAT parquet, COMPRESSION zstd)
                    """
                )
            except duckdb.Error as error:
                raise unreadable_event_file(connection, local, error) from error
        finally:
            connection.close()
        compacted_key = f"{prefix}{COMPACTED_PREFIX}{uuid.uuid4().hex}.parquet"
        storage.put_bytes(compacted_key, target.read_bytes())
    replaced = list(local)
    manifest = {"compacted": compacted_key, "replaces": replaced}
    storage.put_bytes(prefix + MANIFEST_NAME, json.dumps(manifest).encode(), "application/json")
    # Compacted files of an earlier run that stopped before its switch were never live.
    live = {info.key for info in files}
    orphans = [
        info.key for info in listing if _name(info.key).startswith(COMPACTED_PREFIX) and info.key not in live
    ]
    storage.delete(replaced + orphans)
    return True
