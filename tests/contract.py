"""The OpenAPI document as the tests hold answers to it, and API Gateway's own answers from template.yaml."""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parent.parent
EVENTS_PATH = "/v1/apps/{app_id}/events"

# What API Gateway answers itself with DEFAULT_5XX for a Lambda proxy integration: 502 when the
# function fails or answers something invalid, 504 when it does not answer in time.
GATEWAY_5XX_STATUSES = frozenset({502, 504})


def openapi() -> dict[str, Any]:
    return yaml.safe_load(resources.files("minidrama").joinpath("openapi.yaml").read_text())


def operation() -> dict[str, Any]:
    return openapi()["paths"][EVENTS_PATH]["post"]


def documented_statuses() -> set[int]:
    return {int(status) for status in operation()["responses"]}


def documented_error_codes() -> set[str]:
    return set(openapi()["components"]["schemas"]["Error"]["properties"]["error"]["enum"])


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


def assert_documented(status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
    """The answer is one the document describes: a listed status, a body of its schema, its required headers.

    ``headers`` (any letter case), when given, must also say ``Content-Type: application/json``.
    """
    document = openapi()
    responses = document["paths"][EVENTS_PATH]["post"]["responses"]
    assert str(status) in responses, f"status {status} is not in openapi.yaml"
    response = responses[str(status)]
    schema = response["content"]["application/json"]["schema"]
    jsonschema.validate(body, {"$ref": schema["$ref"], "components": document["components"]})
    if headers is None:
        return
    names = {name.lower(): value for name, value in headers.items()}
    assert names.get("content-type", "").startswith("application/json"), headers
    for name, header in (response.get("headers") or {}).items():
        if header.get("required"):
            assert name.lower() in names, f"status {status} without its {name} header"
