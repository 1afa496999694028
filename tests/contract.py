"""The OpenAPI document as the tests hold answers to it, and API Gateway's own answers from template.yaml.

Every helper takes an operation as ``(path, method)`` with the document's path template
(``/v1/apps/{app_id}/metrics``); without one it is the events route, ``POST /v1/apps/{app_id}/events``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parent.parent
EVENTS_PATH = "/v1/apps/{app_id}/events"
METRICS_PATH = "/v1/apps/{app_id}/metrics"
DAILY_PATH = "/v1/apps/{app_id}/metrics/daily"
DAYS_PATH = "/v1/apps/{app_id}/metrics/days"
DASHBOARD_PATH = "/v1/apps/{app_id}/dashboard"
FILES_PATH = "/v1/dashboard/{name}"
READ_PATHS = (METRICS_PATH, DAILY_PATH, DAYS_PATH, DASHBOARD_PATH, FILES_PATH)

# What API Gateway answers itself with DEFAULT_5XX for a Lambda proxy integration: 502 when the
# function fails or answers something invalid, 504 when it does not answer in time.
GATEWAY_5XX_STATUSES = frozenset({502, 504})

# The error codes of one API that the other never answers: the Error schema lists them all.
INGEST_KEY_ERROR_CODES = frozenset({"missing_api_key", "invalid_api_key"})
READ_API_ERROR_CODES = frozenset(
    {
        "missing_token",
        "invalid_token",
        "token_expired",
        "token_for_another_app",
        "invalid_parameter",
        "not_computed",
        "unknown_segment",
        "damaged_facts",
    }
)


@cache
def _parsed() -> dict[str, Any]:
    return yaml.safe_load(resources.files("minidrama").joinpath("openapi.yaml").read_text())


def openapi() -> dict[str, Any]:
    """The document (a copy of the one parsed once, so a test may change it)."""
    return copy.deepcopy(_parsed())


def _resolved(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node``, or what its local ``$ref`` (``#/components/...``) names."""
    while "$ref" in node:
        found: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        node = found
    return node


def operation(path: str = EVENTS_PATH, method: str = "post") -> dict[str, Any]:
    return openapi()["paths"][path][method]


def documented_statuses(path: str = EVENTS_PATH, method: str = "post") -> set[int]:
    return {int(status) for status in operation(path, method)["responses"]}


def documented_response(status: int, path: str = EVENTS_PATH, method: str = "post") -> dict[str, Any]:
    """The documented answer of an operation with ``status``, its ``$ref`` resolved."""
    document = openapi()
    responses = document["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path}: status {status} is not in openapi.yaml"
    return _resolved(document, responses[str(status)])


def documented_error_codes(path: str = EVENTS_PATH) -> set[str]:
    """The codes of the Error schema that the routes of ``path`` may answer (the other API's own left out)."""
    codes = set(openapi()["components"]["schemas"]["Error"]["properties"]["error"]["enum"])
    return codes - (READ_API_ERROR_CODES if path == EVENTS_PATH else INGEST_KEY_ERROR_CODES)


def gateway_answers() -> set[tuple[int | None, str]]:
    """(status, error code) of each of template.yaml's GatewayResponses; None keeps API Gateway's status."""
    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    responses = template["Resources"]["IngestApi"]["Properties"]["GatewayResponses"]
    answers = set()
    for response in responses.values():
        body = response["ResponseTemplates"]["application/json"]
        code = re.search(r'"error":\s*"([a-z_]+)"', body)
        assert code, body
        status = response.get("StatusCode")
        answers.add((int(status) if status is not None else None, code[1]))
    return answers


def _validate(value: Any, schema: dict[str, Any], components: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(
        {**schema, "components": components}, format_checker=jsonschema.FormatChecker()
    ).validate(value)


def assert_documented(
    status: int,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    path: str = EVENTS_PATH,
    method: str = "post",
) -> None:
    """The answer is one the document describes for the operation: a listed status, a content type
    listed for it, a body of its schema, its required headers with documented values.

    ``body`` is the parsed JSON of a JSON answer, else the text. Without ``headers`` (any
    letter case) the answer is taken to be ``application/json``.
    """
    document = openapi()
    response = documented_response(status, path, method)
    names = {name.lower(): value for name, value in (headers or {}).items()}
    content_type = names.get("content-type", "application/json").split(";")[0].strip().lower()
    content = response.get("content") or {}
    assert content_type in content, (
        f"{method.upper()} {path} {status}: {content_type} is not documented ({', '.join(content)})"
    )
    _validate(body, content[content_type]["schema"], document["components"])
    if headers is None:
        return
    for name, header in (response.get("headers") or {}).items():
        header = _resolved(document, header)
        if name.lower() not in names:
            assert not header.get("required"), f"{method.upper()} {path} {status} without its {name} header"
            continue
        schema = header.get("schema") or {}
        value: Any = names[name.lower()]
        if schema.get("type") == "integer":
            assert value.isdigit(), f"{name}: {value!r} is not an integer"
            value = int(value)
        _validate(value, schema, document["components"])
