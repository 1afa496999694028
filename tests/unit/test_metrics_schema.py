"""The metrics document's JSON Schema keeps its versioning promise: an added key is not a new version.

A reader must ignore keys it does not know, so the schema accepts a document with a key added at
any level; a missing required key or a value of the wrong type is still refused. The range schema
reuses the daily schema's definitions by JSON pointer, and every one of those pointers resolves.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from minidrama.metrics.schema import json_schema, range_json_schema

VALIDATOR = jsonschema.Draft202012Validator(json_schema(), format_checker=jsonschema.FormatChecker())


def _cohort(**values: Any) -> dict[str, Any]:
    return {"cohort_date": "2026-11-09", "cohort_size": 0, **values}


def _orders() -> dict[str, Any]:
    return {
        "gmv": 4.99,
        "average_gmv": 4.99,
        "recharge_orders": 1,
        "redeem_orders": 1,
        "top_redeemed_products": [{"product_id": "ep-1", "orders": 1}],
    }


def _segment() -> dict[str, Any]:
    """One segment with every required key (the values of a quiet day)."""
    retention = {period: _cohort(retained=0, rate=None) for period in ("d1", "d7", "d14", "d30")}
    stages = [
        {"stage": f"stage-{n}", "pv": 0, "rate_from_previous": None, "rate_from_first": None}
        for n in range(9)
    ]
    return {
        "dashboard": {
            "total_users": 1,
            "active_users": 1,
            "new_users": 1,
            "median_duration_per_user_ms": 60000.0,
        },
        "behavior": {
            "total_users": 1,
            "new_users": 1,
            "repeat_users": 0,
            "visit_count": 1,
            "average_visit_count": 1.0,
            "median_duration_per_user_ms": 60000.0,
            "median_duration_per_session_ms": 60000.0,
            "active_users": 1,
            "effectively_active_users": 1,
        },
        "retention": {"new": retention, "active": copy.deepcopy(retention)},
        "profile": {"new": {"gender": {"female": 1}}, "active": {"gender": {"female": 1}}},
        "device": {"new": {"brand": {"apple": 1}}, "active": {"brand": {"apple": 1}}},
        "entry_points": {
            "feed": {
                "active_users": 1,
                "new_users": 1,
                "launch_sessions": 1,
                "average_duration_per_session_ms": None,
            }
        },
        "funnel": {"recharge": stages, "redeem": copy.deepcopy(stages)},
        "iap_users": {
            "paying_users": 1,
            "paying_user_rate": 1.0,
            "repeat_paying_users": 0,
            "repeat_paying_user_rate": 0.0,
            "arppu": 4.99,
            "ltv": {period: _cohort(revenue=0.0, value=None) for period in ("d0", "d7", "d30")},
        },
        "iap_orders": {"all": _orders(), "new_payers": _orders(), "returning_payers": _orders()},
        "performance": {"loading_success_rate": 1.0, "average_launch_ms": 840.0},
    }


def _document() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "app_id": "app",
        "date": "2026-11-10",
        "timezone": "UTC",
        "currency": "USD",
        "generated_at": "2026-11-11T01:30:12.345678Z",
        "segments": {"all": _segment(), "os:ios": _segment()},
    }


def _at(document: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    node: Any = document
    for step in path:
        node = node[step]
    return node


def test_the_sample_document_is_valid() -> None:
    # GIVEN the document the other cases change WHEN validated THEN it passes as it is
    VALIDATOR.validate(_document())


@pytest.mark.parametrize(
    "path",
    [
        (),
        ("segments", "all"),
        ("segments", "all", "dashboard"),
        ("segments", "os:ios", "retention", "new", "d7"),
        ("segments", "all", "profile"),
        ("segments", "all", "entry_points", "feed"),
        ("segments", "all", "funnel"),
        ("segments", "all", "funnel", "recharge", 0),
        ("segments", "all", "iap_users", "ltv", "d0"),
        ("segments", "all", "iap_orders", "all"),
        ("segments", "all", "iap_orders", "all", "top_redeemed_products", 0),
        ("segments", "all", "performance"),
    ],
    ids=lambda path: "/".join(map(str, path)) or "top",
)
def test_a_document_with_an_added_key_is_valid(path: tuple[str | int, ...]) -> None:
    # GIVEN a valid document with one key it does not list added at one level (a later release's
    # new metric, which a reader of this version ignores)
    document = _document()
    _at(document, path)["added_in_a_later_release"] = {"any": ["value", 1, None]}

    # WHEN validated THEN it passes: adding a key is not a new schema version
    VALIDATOR.validate(document)


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ((), "segments"),
        ((), "schema_version"),
        (("segments",), "all"),
        (("segments", "all"), "dashboard"),
        (("segments", "all", "dashboard"), "total_users"),
        (("segments", "all", "retention", "active", "d30"), "rate"),
        (("segments", "all", "iap_orders", "new_payers"), "gmv"),
        (("segments", "all", "funnel", "redeem", 8), "pv"),
    ],
    ids=lambda value: "/".join(map(str, value)) if isinstance(value, tuple) else value,
)
def test_a_document_missing_a_required_key_is_refused(path: tuple[str | int, ...], key: str) -> None:
    # GIVEN a valid document with one required key removed
    document = _document()
    del _at(document, path)[key]

    # WHEN validated THEN it fails naming the key
    with pytest.raises(jsonschema.ValidationError, match=f"'{key}' is a required property"):
        VALIDATOR.validate(document)


@pytest.mark.parametrize(
    ("path", "key", "value"),
    [
        ((), "schema_version", "1"),
        ((), "date", "10/11/2026"),
        ((), "currency", "usd"),
        (("segments", "all", "dashboard"), "total_users", "4"),
        (("segments", "all", "dashboard"), "new_users", 1.5),
        (("segments", "all", "behavior"), "average_visit_count", "1.0"),
        (("segments", "all", "iap_orders", "all"), "gmv", "4.99"),
        (("segments", "all", "performance"), "loading_success_rate", 1.5),
        (("segments", "all", "funnel"), "recharge", []),
        (("segments", "all", "profile", "new", "gender"), "female", 0),
    ],
    ids=lambda value: "/".join(map(str, value)) if isinstance(value, tuple) else None,
)
def test_a_document_with_a_value_of_the_wrong_type_is_refused(
    path: tuple[str | int, ...], key: str, value: Any
) -> None:
    # GIVEN a valid document with one value changed to a wrong type or out of its range
    document = _document()
    _at(document, path)[key] = value

    # WHEN validated THEN it fails
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(document)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_pointer_of_the_range_schema_into_the_daily_schema_resolves() -> None:
    # GIVEN both schemas under their $ids, and the range schema's references into the daily one
    daily, ranged = json_schema(), range_json_schema()
    registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in (daily, ranged)
    )
    resolver = registry.resolver(base_uri=ranged["$id"])
    pointers = [ref for ref in _refs(ranged) if ref.startswith("metrics.v1.schema.json#")]

    # WHEN each is resolved THEN it names a schema of the daily document
    assert len(pointers) > 10
    for pointer in pointers:
        target = resolver.lookup(pointer).contents
        assert isinstance(target, dict) and target, pointer
