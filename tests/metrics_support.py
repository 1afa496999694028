"""Helpers for the metrics tests: build SPEC events, put them in a lake, compute a document."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import jsonschema
from referencing import Registry, Resource

from minidrama.config import AppConfig
from minidrama.ingestion import ingest_events
from minidrama.lake import Storage, metrics_key
from minidrama.metrics import compute_days, query_range
from minidrama.metrics.schema import json_schema, range_json_schema

# Far enough ahead that no test event is "more than 24 h after receipt".
RECEIVED_AT = datetime(2027, 6, 1, tzinfo=UTC)
_VALIDATOR = jsonschema.Draft202012Validator(json_schema(), format_checker=jsonschema.FormatChecker())
_SCHEMAS = Registry().with_resources(
    (schema["$id"], Resource.from_contents(schema)) for schema in (json_schema(), range_json_schema())
)
RANGE_VALIDATOR = jsonschema.Draft202012Validator(
    range_json_schema(), registry=_SCHEMAS, format_checker=jsonschema.FormatChecker()
)


def event(
    event_id: str,
    name: str,
    time: str,
    user: str,
    *,
    os: str = "ios",
    region: str = "US",
    session: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    """One event as an SDK sends it; ``session`` defaults to ``s-<event_id>`` where required."""
    body: dict[str, Any] = {
        "event_id": event_id,
        "event_name": name,
        "event_time": time,
        "user_id": user,
        "os": os,
        "region": region,
        "properties": {k: Decimal(str(v)) if isinstance(v, float) else v for k, v in properties.items()},
    }
    if session or name in ("app_launch", "session_end"):
        body["session_id"] = session or f"s-{event_id}"
    return body


def ingest(
    lake: Storage,
    events: list[dict[str, Any]],
    app: AppConfig | None = None,
    received_at: datetime = RECEIVED_AT,
) -> None:
    result = ingest_events(lake, app or AppConfig("app"), events, received_at=received_at)
    assert not result.rejected, result.rejected


def compute(lake: Storage, day: date, app: AppConfig | None = None) -> dict[str, Any]:
    """Compute ``day`` and return the stored document, checked against the JSON Schema."""
    app = app or AppConfig("app")
    compute_days(lake, app, [day])
    document = json.loads(lake.get_bytes(metrics_key(app.app_id, day)))
    _VALIDATOR.validate(document)
    return document


def without_generated_at(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "generated_at"}


def query(
    lake: Storage, first: date, last: date, app: AppConfig | None = None, segments: list[str] | None = None
) -> dict[str, Any]:
    """The range document of [first, last] (its days computed before), checked against its JSON Schema."""
    document = query_range(lake, app or AppConfig("app"), first, last, segments)
    RANGE_VALIDATOR.validate(document)
    return document
