"""The metrics document's JSON Schema and ``schema_version`` handling for readers.

Versioning: ``schema_version`` is an integer. Adding a key is not a new version (readers must
ignore keys they don't know); renaming, removing or changing the meaning or type of a key is.
A reader calls :func:`read_document`, which accepts every version it knows (upgrading older
ones to the current shape) and refuses newer ones with a clear error instead of misreading them.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "CURRENT_SCHEMA_VERSION",
    "UnsupportedSchemaVersion",
    "json_schema",
    "range_json_schema",
    "read_document",
]

CURRENT_SCHEMA_VERSION = 1


class UnsupportedSchemaVersion(ValueError):
    """The document was written by a newer (or unknown) version of the schema."""


@cache
def json_schema(version: int = CURRENT_SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of documents of ``version``."""
    text = resources.files("minidrama.metrics").joinpath(f"metrics.v{version}.schema.json").read_text()
    return json.loads(text)


@cache
def range_json_schema(version: int = CURRENT_SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON Schema of range documents (``kind: "range"``) of ``version``; its ``$ref``s point
    into the daily schema, ``metrics.v{version}.schema.json``, by relative URI."""
    text = resources.files("minidrama.metrics").joinpath(f"range.v{version}.schema.json").read_text()
    return json.loads(text)


# version -> function turning a document of that version into one of version + 1
_UPGRADES: dict[int, Any] = {}


def read_document(data: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """Parse a stored document and return it in the current version's shape."""
    document = json.loads(data) if isinstance(data, bytes | str) else dict(data)
    version = document.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise UnsupportedSchemaVersion(f"schema_version {version!r} is not a positive integer")
    if version > CURRENT_SCHEMA_VERSION:
        raise UnsupportedSchemaVersion(
            f"schema_version {version} is newer than this reader understands ({CURRENT_SCHEMA_VERSION}); "
            "upgrade minidrama"
        )
    while version < CURRENT_SCHEMA_VERSION:
        document = _UPGRADES[version](document)
        version = document["schema_version"]
    return document
