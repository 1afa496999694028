"""The HTTP contract as a function: every status, the order of checks, the OpenAPI document."""

from __future__ import annotations

import base64
import json
from typing import Any

import jsonschema
import pytest

from minidrama.api import AppDirectory, handle_post_events, request_body_bytes
from minidrama.config import register_app
from minidrama.ingestion import MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST
from minidrama.lake import LocalStorage
from minidrama.writer import ParquetSink
from tests.contract import assert_documented, openapi, operation

EVENT = {
    "event_id": "e1",
    "event_name": "minis_visit",
    "event_time": "2026-11-28T10:00:00Z",
    "user_id": "u1",
    "os": "android",
    "region": "SG",
}


class Client:
    """Calls the contract on a local lake with one registered app."""

    def __init__(self, lake: LocalStorage) -> None:
        self.lake = lake
        _app, self.key = register_app(lake, "app-1")
        self.directory = AppDirectory(lake)

    def post(
        self, body: Any, *, app_id: str = "app-1", headers: dict[str, str] | None = None, raw: bool = False
    ):
        data = body if raw else json.dumps(body).encode()
        return handle_post_events(
            app_id,
            {"X-Api-Key": self.key} if headers is None else headers,
            data,
            directory=self.directory,
            storage=self.lake,
            sink=ParquetSink(self.lake),
        )


@pytest.fixture
def client(lake: LocalStorage) -> Client:
    return Client(lake)


def _cases(key: str) -> list[tuple[str, dict[str, Any], int, str]]:
    big_event = dict(EVENT, padding="x" * (MAX_BODY_BYTES + 1))
    return [
        ("valid", {"body": {"events": [EVENT]}}, 202, ""),
        ("partly invalid", {"body": {"events": [EVENT, {"event_id": "e2"}]}}, 202, ""),
        ("empty batch", {"body": {"events": []}}, 202, ""),
        ("missing key", {"body": {"events": [EVENT]}, "headers": {}}, 401, "missing_api_key"),
        ("empty key", {"body": {"events": [EVENT]}, "headers": {"x-api-key": ""}}, 401, "missing_api_key"),
        (
            "wrong key",
            {"body": {"events": [EVENT]}, "headers": {"x-api-key": "mdk_nope"}},
            403,
            "invalid_api_key",
        ),
        ("unknown app", {"body": {"events": [EVENT]}, "app_id": "other"}, 404, "unknown_app"),
        ("invalid app id", {"body": {"events": [EVENT]}, "app_id": "../etc"}, 404, "unknown_app"),
        ("malformed JSON", {"body": b"{nope", "raw": True}, 400, "malformed_request"),
        ("wrong shape", {"body": [EVENT]}, 400, "malformed_request"),
        ("too many", {"body": {"events": [EVENT] * (MAX_EVENTS_PER_REQUEST + 1)}}, 413, "payload_too_large"),
        ("too big", {"body": {"events": [big_event]}}, 413, "payload_too_large"),
        ("header case", {"body": {"events": [EVENT]}, "headers": {"X-API-KEY": key}}, 202, ""),
    ]


@pytest.mark.parametrize("case", range(13))
def test_every_status_of_the_contract(client: Client, case: int) -> None:
    name, request, status, code = _cases(client.key)[case]
    response = client.post(**request)
    assert response.status == status, name
    if status >= 400:
        assert response.body["error"] == code
        assert response.body["message"]


def test_authentication_comes_before_the_body(client: Client) -> None:
    # a caller without a valid key learns nothing about the body or the app's settings
    assert client.post(b"{nope", raw=True, headers={}).status == 401
    assert client.post(b"{nope", raw=True, headers={"x-api-key": "bad"}).status == 403
    assert client.post(b"{nope", raw=True, headers={"x-api-key": "bad"}, app_id="ghost").status == 404


def test_the_accepted_answer_lists_the_rejected_events(client: Client) -> None:
    response = client.post({"events": [EVENT, dict(EVENT, event_id="e2", region="Mars")]})
    assert response.body["accepted"] == 1
    (rejected,) = response.body["rejected"]
    assert rejected["index"] == 1 and rejected["event_id"] == "e2"
    assert rejected["errors"][0].startswith("region:")
    assert (response.accepted, response.rejected) == (1, 1)


def test_a_failure_to_store_answers_503_so_the_client_retries(client: Client) -> None:
    class Broken:
        def write(self, app_id: str, rows: list[dict[str, Any]], encoded: list[bytes] | None = None) -> None:
            raise OSError("disk full")

    response = handle_post_events(
        "app-1",
        {"x-api-key": client.key},
        json.dumps({"events": [EVENT]}),
        directory=client.directory,
        storage=client.lake,
        sink=Broken(),
    )
    assert response.status == 503 and response.headers == {"Retry-After": "1"}
    assert "retry" in response.body["message"]


def test_an_unreadable_configuration_answers_503(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(key: str) -> bytes:
        raise OSError("S3 unavailable")

    monkeypatch.setattr(client.lake, "get_bytes", fail)
    response = client.post({"events": [EVENT]})
    assert response.status == 503 and response.body["error"] == "unavailable"


@pytest.mark.parametrize(
    ("body", "is_base64", "expected"),
    [
        (None, False, b""),
        ("{}", False, b"{}"),
        (base64.b64encode(b'{"events": []}').decode(), True, b'{"events": []}'),
    ],
)
def test_proxy_bodies_may_be_base64(body: str | None, is_base64: bool, expected: bytes) -> None:
    assert request_body_bytes(body, is_base64) == expected


def test_a_bad_base64_body_is_a_400(client: Client) -> None:
    response = handle_post_events(
        "app-1",
        {"x-api-key": client.key},
        "%%%not base64",
        is_base64_encoded=True,
        directory=client.directory,
        storage=client.lake,
        sink=ParquetSink(client.lake),
    )
    assert response.status == 400


_BATCH_TEXT = json.dumps({"events": [dict(EVENT, user_id="ü-1")]}, ensure_ascii=False)
# ASCII text in UTF-16/32 without a BOM is valid UTF-8 byte for byte; only its NUL bytes give it away.
_ASCII_TEXT = json.dumps({"events": [EVENT]})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_BATCH_TEXT.encode("utf-16"), "not UTF-8 text"),
        (_ASCII_TEXT.encode("utf-16-le"), "a NUL byte at byte 1"),
        (_ASCII_TEXT.encode("utf-16-be"), "a NUL byte at byte 0"),
        (_BATCH_TEXT.encode("utf-32"), "not UTF-8 text"),
        (_ASCII_TEXT.encode("utf-32-be"), "a NUL byte at byte 0"),
        (b"\xef\xbb\xbf" + _BATCH_TEXT.encode(), "byte order mark"),
        (_BATCH_TEXT.encode("latin-1"), "not UTF-8 text"),
    ],
    ids=["utf-16 with BOM", "utf-16-le", "utf-16-be", "utf-32 with BOM", "utf-32-be", "utf-8 BOM", "latin-1"],
)
def test_a_body_that_is_not_utf8_is_a_400_and_stores_nothing(
    client: Client, body: bytes, message: str
) -> None:
    # GIVEN a valid batch encoded otherwise than as UTF-8 (json.loads alone would take most of these)
    # WHEN posted
    response = client.post(body, raw=True)
    # THEN 400 naming the problem, and nothing is stored or quarantined
    assert (response.status, response.body["error"]) == (400, "malformed_request")
    assert message in response.body["message"]
    assert {info.key.split("/")[0] for info in client.lake.list("")} == {"config"}


def test_the_same_batch_in_utf8_is_accepted(client: Client) -> None:
    response = client.post(_BATCH_TEXT.encode("utf-8"), raw=True)
    assert (response.status, response.body) == (202, {"accepted": 1, "rejected": []})


def test_the_directory_caches_but_sees_new_apps_and_keys_soon(lake: LocalStorage) -> None:
    # GIVEN a directory with a 60 s cache and a 5 s recheck, on a fake clock
    now = [0.0]
    directory = AppDirectory(lake, ttl_seconds=60, recheck_seconds=5, clock=lambda: now[0])
    assert directory.app("late") is None
    # WHEN an app is registered 1 s later, THEN it is not yet seen; 6 s later it is
    _app, key = register_app(lake, "late")
    now[0] = 1.0
    assert directory.app("late") is None
    now[0] = 6.0
    assert directory.app("late") is not None and directory.key_matches("late", key)
    # AND a rotated key works after the recheck interval, without waiting for the TTL
    _app, new_key = register_app(lake, "late")
    now[0] = 12.0
    assert directory.key_matches("late", new_key) and not directory.key_matches("late", key)


# --- the OpenAPI document --------------------------------------------------------------------


def test_every_answer_matches_its_documented_schema(client: Client) -> None:
    for name, request, status, _code in _cases(client.key):
        # GIVEN each case of the contract WHEN answered
        response = client.post(**request)
        # THEN the document lists its status and its body has that status' schema
        assert response.status == status, name
        assert_documented(
            response.status, response.body, {"Content-Type": "application/json", **response.headers}
        )


def test_the_documented_example_is_accepted(client: Client) -> None:
    example = operation()["requestBody"]["content"]["application/json"]["example"]
    response = client.post(example)
    assert response.status == 202 and response.body == {"accepted": 1, "rejected": []}


def test_documented_limits_are_the_enforced_ones() -> None:
    batch = openapi()["components"]["schemas"]["EventBatch"]
    assert batch["properties"]["events"]["maxItems"] == MAX_EVENTS_PER_REQUEST
    assert f"{MAX_BODY_BYTES:,}" in operation()["requestBody"]["description"]


def test_the_request_schema_leaves_each_event_to_the_per_event_rules(client: Client) -> None:
    # GIVEN events that break the rules the Event schema documents (types, required keys)
    events = [{"event_id": 7}, "not an event", dict(EVENT, region=None), {}]
    batch = {"events": events}
    # THEN the request schema takes the batch: a broken event is a rejection, not a bad request
    request_schema = operation()["requestBody"]["content"]["application/json"]["schema"]
    jsonschema.validate(batch, {"$ref": request_schema["$ref"], "components": openapi()["components"]})
    # AND the API answers it 202 with each event rejected alone
    response = client.post(batch)
    assert response.status == 202
    assert [rejected["index"] for rejected in response.body["rejected"]] == [0, 1, 2, 3]
