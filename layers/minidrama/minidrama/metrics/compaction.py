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
"""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from collections import defaultdict
from datetime import date
from pathlib import Path

from minidrama.lake import NotFoundError, ObjectInfo, Storage, events_partition

__all__ = ["event_files_by_partition", "readable_files", "compact_partition", "MANIFEST_NAME"]

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


def compact_partition(storage: Storage, app_id: str, utc_date: date, hour: int) -> bool:
    """Rewrite one hour partition into a single file; returns whether anything was rewritten."""
    import duckdb  # the metrics function's engine; imported here so the listing needs no DuckDB

    prefix = events_partition(app_id, utc_date, hour)
    listing = _finish_previous(storage, prefix, storage.list(prefix))
    files = readable_files(storage, listing)
    if len(files) <= 1:
        return False
    with tempfile.TemporaryDirectory(prefix="minidrama-compact-") as workdir:
        local = [storage.local_copy(info.key, Path(workdir) / "in") for info in files]
        target = Path(workdir) / "compacted.parquet"
        sources = ", ".join("'" + str(path).replace("'", "''") + "'" for path in local)
        connection = duckdb.connect()
        try:
            connection.execute("SET TimeZone = 'UTC'")
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
                ) TO '{target}' (FORMAT parquet, COMPRESSION zstd)
                """
            )
        finally:
            connection.close()
        compacted_key = f"{prefix}{COMPACTED_PREFIX}{uuid.uuid4().hex}.parquet"
        storage.put_bytes(compacted_key, target.read_bytes())
    replaced = [info.key for info in files]
    manifest = {"compacted": compacted_key, "replaces": replaced}
    storage.put_bytes(prefix + MANIFEST_NAME, json.dumps(manifest).encode(), "application/json")
    # Compacted files of an earlier run that stopped before its switch were never live.
    live = {info.key for info in files}
    orphans = [
        info.key for info in listing if _name(info.key).startswith(COMPACTED_PREFIX) and info.key not in live
    ]
    storage.delete(replaced + orphans)
    return True
