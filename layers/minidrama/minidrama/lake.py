"""The lake: where everything lives, under an S3 bucket or a local directory.

Layout functions are pure (a key in, a path string out); storage is two small
implementations of one interface, :class:`LocalStorage` and :class:`S3Storage`.
Keys always use ``/`` and never start with one.

Layout (SPEC section 3, plus the project's own areas)::

    events/app_id={app}/dt={YYYY-MM-DD}/hour={HH}/{uuid}.parquet
    quarantine/app_id={app}/dt={YYYY-MM-DD}/{uuid}.jsonl
    metrics/app_id={app}/dt={YYYY-MM-DD}/metrics.json
    metrics/app_id={app}/week={YYYY-Www}/metrics.json    range documents of complete ISO weeks
    metrics/app_id={app}/month={YYYY-MM}/metrics.json    and of complete months
    facts/{table}/app_id={app}/dt={YYYY-MM-DD}/...        stored facts (public; minidrama.metrics.facts)
    reports/app_id={app}/dt={YYYY-MM-DD}/report.html | report.pdf | report.eml | status.json | sent/
    reports/app_id={app}/week={YYYY-Www}/...             weekly reports, the same files
    reports/app_id={app}/month={YYYY-MM}/...             and monthly ones
    state/app_id={app}/day_facts/dt={YYYY-MM-DD}/...     per-day facts of the metrics engine
    config/apps.json                                     registered apps (key hashes, settings)
    config/rates.json                                    currency conversion rates
"""

from __future__ import annotations

import builtins
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "ObjectInfo",
    "Storage",
    "LocalStorage",
    "S3Storage",
    "NotFoundError",
    "open_lake",
    "events_partition",
    "events_key",
    "quarantine_key",
    "metrics_key",
    "week_metrics_key",
    "month_metrics_key",
    "report_key",
    "period_report_key",
    "state_prefix",
    "APPS_CONFIG_KEY",
    "RATES_CONFIG_KEY",
]

APPS_CONFIG_KEY = "config/apps.json"
RATES_CONFIG_KEY = "config/rates.json"


class NotFoundError(KeyError):
    """The key does not exist in the lake."""


# --- layout (pure) ---------------------------------------------------------------------------


def events_partition(app_id: str, dt: date | str, hour: int) -> str:
    """The prefix of one hour partition of accepted events (UTC date and hour)."""
    return f"events/app_id={app_id}/dt={_iso(dt)}/hour={hour:02d}/"


def events_key(app_id: str, dt: date | str, hour: int, name: str | None = None) -> str:
    """A new Parquet file key inside an hour partition."""
    return events_partition(app_id, dt, hour) + f"{name or uuid.uuid4().hex}.parquet"


def quarantine_key(app_id: str, received: date | str, name: str | None = None) -> str:
    """A new quarantine file key, by the UTC date the input was received."""
    return f"quarantine/app_id={app_id}/dt={_iso(received)}/{name or uuid.uuid4().hex}.jsonl"


def metrics_key(app_id: str, day: date | str) -> str:
    return f"metrics/app_id={app_id}/dt={_iso(day)}/metrics.json"


def week_metrics_key(app_id: str, week: str) -> str:
    """The range document of an ISO week (``YYYY-Www``, Monday first)."""
    return f"metrics/app_id={app_id}/week={week}/metrics.json"


def month_metrics_key(app_id: str, month: str) -> str:
    """The range document of a calendar month (``YYYY-MM``)."""
    return f"metrics/app_id={app_id}/month={month}/metrics.json"


def report_key(app_id: str, day: date | str, filename: str) -> str:
    return period_report_key(app_id, f"dt={_iso(day)}", filename)


def period_report_key(app_id: str, partition: str, filename: str) -> str:
    """A report's file under its period's partition: ``dt=…``, ``week=2026-W48`` or ``month=2026-11``."""
    return f"reports/app_id={app_id}/{partition}/{filename}"


def state_prefix(app_id: str) -> str:
    return f"state/app_id={app_id}/"


def _iso(value: date | str) -> str:
    return value.isoformat() if isinstance(value, date) else value


# --- storage ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    version: str  # changes whenever the object's content changes (ETag on S3, mtime+size locally)


class Storage(Protocol):
    """What the rest of the package needs from a lake."""

    uri: str

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None: ...

    def put_many(self, objects: builtins.list[tuple[str, bytes, str | None]]) -> None:
        """Put several objects (key, data, content type); every one is durable on return."""
        ...

    def put_if_absent(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        """Create ``key`` only if it does not exist (atomically); True when this call created it."""
        ...

    def get_bytes(self, key: str) -> bytes: ...

    def get_tail(self, key: str, size: int) -> bytes:
        """The last ``size`` bytes of the object (all of it when it is smaller)."""
        ...

    def list(self, prefix: str) -> list[ObjectInfo]: ...

    def delete(self, keys: builtins.list[str]) -> None: ...

    def exists(self, key: str) -> bool: ...

    def local_copy(self, key: str, directory: Path) -> Path:
        """A local file path holding the object (the file itself for a local lake)."""
        ...


class LocalStorage:
    """A lake that is a directory on disk. Writes are atomic (temp file + rename)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.uri = str(self.root)

    def path(self, key: str) -> Path:
        return self.root / key

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        target = self.path(key)
        make_directories(target.parent)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp).replace(target)
            fsync_directory(target.parent)  # the rename itself must survive a power loss
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_many(self, objects: builtins.list[tuple[str, bytes, str | None]]) -> None:
        """As :meth:`put_bytes` for each, with each directory synced once after all the renames
        (the local server's group commit writes a few files per directory at a time)."""
        written: builtins.list[tuple[str, Path]] = []
        try:
            for key, data, _content_type in objects:
                target = self.path(key)
                make_directories(target.parent)
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
                written.append((tmp, target))
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            for tmp, target in written:
                Path(tmp).replace(target)
            for directory in dict.fromkeys(target.parent for _tmp, target in written):
                fsync_directory(directory)
        except BaseException:
            for tmp, _target in written:
                Path(tmp).unlink(missing_ok=True)
            raise

    def put_if_absent(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        path = self.path(key)
        make_directories(path.parent)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError as error:
            raise NotFoundError(key) from error

    def get_tail(self, key: str, size: int) -> bytes:
        try:
            with self.path(key).open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(handle.tell() - size, 0))
                return handle.read()
        except FileNotFoundError as error:
            raise NotFoundError(key) from error

    def list(self, prefix: str) -> list[ObjectInfo]:
        base = self.path(prefix.rstrip("/")) if prefix.endswith("/") else self.path(prefix).parent
        if not base.exists():
            return []
        found = []
        for path in _walk(base):
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix) and not path.name.startswith(".tmp-"):
                stat = path.stat()
                found.append(ObjectInfo(key, stat.st_size, f"{stat.st_mtime_ns}-{stat.st_size}"))
        return sorted(found, key=lambda info: info.key)

    def delete(self, keys: builtins.list[str]) -> None:
        for key in keys:
            self.path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def local_copy(self, key: str, directory: Path) -> Path:
        path = self.path(key)
        if not path.is_file():
            raise NotFoundError(key)
        return path


def make_directories(directory: Path) -> None:
    """``directory`` and its missing parents, each new one's entry synced in its parent (so a new
    partition's directory, and the files in it, survive a power loss)."""
    if directory.is_dir():
        return
    missing = [directory, *[parent for parent in directory.parents if not parent.exists()]]
    directory.mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):
        fsync_directory(created.parent)


def fsync_directory(directory: Path) -> None:
    """Sync a directory, so that the files created, renamed or deleted in it survive a power loss."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _walk(base: Path) -> Iterator[Path]:
    for dirpath, _dirnames, filenames in os.walk(base):
        for filename in filenames:
            yield Path(dirpath) / filename


class S3Storage:
    """A lake under ``s3://bucket/prefix``; the boto3 client is passed in."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.uri = f"s3://{bucket}/{self.prefix}"

    def _full(self, key: str) -> str:
        return self.prefix + key

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data, **extra)

    def put_many(self, objects: builtins.list[tuple[str, bytes, str | None]]) -> None:
        for key, data, content_type in objects:
            self.put_bytes(key, data, content_type)

    def put_if_absent(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        extra = {"ContentType": content_type} if content_type else {}
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._full(key), Body=data, IfNoneMatch="*", **extra
            )
        except self.client.exceptions.ClientError as error:
            # 412 when the object exists; 409 when a concurrent conditional write is in flight.
            if error.response.get("Error", {}).get("Code") in {
                "PreconditionFailed",
                "ConditionalRequestConflict",
            }:
                return False
            raise
        return True

    def get_bytes(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
        except self.client.exceptions.NoSuchKey as error:
            raise NotFoundError(key) from error
        return response["Body"].read()

    def get_tail(self, key: str, size: int) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._full(key), Range=f"bytes=-{size}")
        except self.client.exceptions.NoSuchKey as error:
            raise NotFoundError(key) from error
        return response["Body"].read()

    def list(self, prefix: str) -> list[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        found = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._full(prefix)):
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) :]
                found.append(ObjectInfo(key, item["Size"], item["ETag"].strip('"')))
        return sorted(found, key=lambda info: info.key)

    def delete(self, keys: builtins.list[str]) -> None:
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            response = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": self._full(key)} for key in chunk], "Quiet": True},
            )
            # DeleteObjects answers 200 even when some keys failed; those are listed in Errors.
            if response.get("Errors"):
                failed = ", ".join(f"{e.get('Key')} ({e.get('Code')})" for e in response["Errors"][:5])
                raise OSError(
                    f"could not delete {len(response['Errors'])} object(s) from {self.uri}: {failed}"
                )

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except self.client.exceptions.ClientError as error:
            if _is_missing(error):
                return False
            raise
        return True

    def local_copy(self, key: str, directory: Path) -> Path:
        target = directory / key
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.download_file(self.bucket, self._full(key), str(target))
        except self.client.exceptions.ClientError as error:
            if _is_missing(error):
                raise NotFoundError(key) from error
            raise
        return target


def _is_missing(error: Any) -> bool:
    """Whether an S3 ClientError says the object does not exist (HEAD and GET name it differently)."""
    return error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}


def open_lake(location: str | Path | None = None, s3_client: Any = None) -> Storage:
    """Open ``s3://bucket/prefix`` or a local directory; default ``$MINIDRAMA_LAKE``, else ``./lake``."""
    location = str(location or os.environ.get("MINIDRAMA_LAKE") or "lake")
    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://") :].partition("/")
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        return S3Storage(s3_client, bucket, prefix)
    return LocalStorage(location)
