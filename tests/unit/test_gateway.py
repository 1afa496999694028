"""The local server's API Gateway stand-in: the proxy event, the answer, the refusals before any route."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from minidrama.gateway import (
    HttpRequest,
    error_answer,
    framing_error,
    http_answer,
    oversized_head,
    proxy_event,
)
from tests.conftest import load_event

RECEIVED = datetime(2026, 11, 28, 11, 3, tzinfo=UTC)


def _event(request: HttpRequest) -> APIGatewayProxyEvent:
    return APIGatewayProxyEvent(proxy_event(request, request_id="r-1", received_at=RECEIVED))


def test_the_event_has_the_fields_of_a_recorded_api_gateway_event() -> None:
    # GIVEN the sample API Gateway event the Lambda tests use (events/ingest_request.json)
    recorded = load_event("ingest_request")
    # WHEN the local server builds the event of a request
    built = proxy_event(
        HttpRequest("POST", "/v1/apps/a/events", [("X-Api-Key", "k")], b"{}"),
        request_id="r-1",
        received_at=RECEIVED,
    )
    # THEN it has the same top-level fields, and request-context fields the recorded one has
    assert set(built) == set(recorded)
    assert set(built["requestContext"]) <= set(recorded["requestContext"])


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("/v1/apps/a/events", "/v1/apps/a/events", {}),
        ("/v1/apps/a/events?x=1&x=2&y=", "/v1/apps/a/events", {"x": ["1", "2"], "y": [""]}),
        ("/v1/apps/caf%C3%A9/events", "/v1/apps/café/events", {}),
        ("/v1/apps/a%2Fb/events", "/v1/apps/a/b/events", {}),
        ("http://127.0.0.1:8080/v1/apps/a/events?z=9", "/v1/apps/a/events", {"z": ["9"]}),
        ("*", "*", {}),
    ],
    ids=["plain", "query", "percent-encoded", "encoded slash", "absolute form", "asterisk"],
)
def test_the_path_is_decoded_and_the_query_split(target: str, path: str, query: dict[str, list[str]]) -> None:
    event = _event(HttpRequest("GET", target, []))
    assert event.path == path
    assert event.multi_value_query_string_parameters == query
    assert event.query_string_parameters == {name: values[-1] for name, values in query.items()}


def test_headers_keep_their_case_and_a_repeated_one_its_last_value() -> None:
    # GIVEN a request with a repeated header, as API Gateway delivers them
    request = HttpRequest(
        "POST", "/", [("X-Api-Key", "first"), ("x-api-key", "second"), ("User-Agent", "sdk/1")]
    )
    event = _event(request)
    # THEN headers holds one value per name as sent, multiValueHeaders all of them
    assert event.raw_event["headers"] == {"X-Api-Key": "first", "x-api-key": "second", "User-Agent": "sdk/1"}
    assert event.raw_event["multiValueHeaders"]["X-Api-Key"] == ["first"]
    assert event.request_context.identity.user_agent == "sdk/1"


@pytest.mark.parametrize(
    "body",
    [b'{"events": []}', "ü".encode("utf-16"), b"\x00\xff", b"\xef\xbb\xbf{}"],
    ids=["json", "utf-16", "binary", "bom"],
)
def test_the_body_reaches_the_function_byte_for_byte(body: bytes) -> None:
    event = _event(HttpRequest("POST", "/", [], body))
    assert event.is_base64_encoded is True
    assert base64.b64decode(event.body or "") == body


def test_an_empty_body_is_null_as_api_gateway_sends_it() -> None:
    event = _event(HttpRequest("GET", "/", []))
    assert (event.body, event.is_base64_encoded) == (None, False)


def test_the_request_context_says_who_asked_and_when() -> None:
    event = _event(HttpRequest("PUT", "/x", [], source_ip="10.0.0.9"))
    context = event.request_context
    assert (context.http_method, context.stage, context.request_id) == ("PUT", "local", "r-1")
    assert context.identity.source_ip == "10.0.0.9"
    assert context.request_time == "28/Nov/2026:11:03:00 +0000"
    assert context.request_time_epoch == int(RECEIVED.timestamp()) * 1000
    assert event.http_method == "PUT"


@pytest.mark.parametrize(
    ("resolved", "expected"),
    [
        (
            {
                "statusCode": 202,
                "multiValueHeaders": {"Content-Type": ["application/json"]},
                "body": '{"a":1}',
            },
            (202, [("Content-Type", "application/json")], b'{"a":1}'),
        ),
        (
            {
                "statusCode": 405,
                "headers": {"Allow": "POST"},
                "multiValueHeaders": {"X": ["1", "2"]},
                "body": "",
            },
            (405, [("Allow", "POST"), ("X", "1"), ("X", "2")], b""),
        ),
        (
            {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True},
            (200, [], b"\x00\x01"),
        ),
        ({"statusCode": 204, "body": None}, (204, [], b"")),
    ],
    ids=["json", "headers of both kinds", "base64", "no body"],
)
def test_the_proxy_answer_becomes_status_headers_and_body(
    resolved: dict[str, object], expected: tuple[int, list[tuple[str, str]], bytes]
) -> None:
    answer = http_answer(resolved)
    assert (answer.status, answer.headers, answer.body) == expected


def test_an_error_answer_is_json_in_the_contract_shape() -> None:
    answer = error_answer(503, "unavailable", "later", {"Retry-After": "1"})
    assert answer.status == 503
    assert answer.headers == [("Content-Type", "application/json"), ("Retry-After", "1")]
    assert json.loads(answer.body) == {"error": "unavailable", "message": "later"}


_LINE = b"POST /v1/apps/a/events HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize(
    ("head", "refused"),
    [
        (_LINE + b"Content-Length: 5\r\n\r\nhello", None),
        (_LINE + b"Transfer-Encoding: chunked\r\n\r\n", None),
        (_LINE + b"\r\n", None),
        (_LINE + b"Content-Length: 5\r\ncontent-length: 5\r\n\r\n", "more than one Content-Length"),
        (_LINE + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n", "more than one Content-Length"),
        (_LINE + b"Content-Length: 5, 5\r\n\r\n", "more than one Content-Length"),
        (_LINE + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "both Content-Length"),
        (_LINE + b"TRANSFER-ENCODING: chunked\r\nContent-Length: 5\r\n\r\n", "both Content-Length"),
        # a body that looks like headers is not read as headers
        (_LINE + b"Content-Length: 20\r\n\r\nContent-Length: 3\r\n\r\n", None),
        (
            _LINE.replace(b"\r\n", b"\n") + b"Content-Length: 1\nContent-Length: 1\n\n",
            "more than one Content-Length",
        ),
    ],
    ids=[
        "one length",
        "chunked",
        "no body",
        "same length twice",
        "two lengths",
        "a list",
        "length and chunked",
        "any letter case",
        "body not headers",
        "bare LF",
    ],
)
def test_ambiguous_framing_is_refused(head: bytes, refused: str | None) -> None:
    answer = framing_error(head)
    if refused is None:
        assert answer is None
    else:
        assert answer is not None and answer.status == 400
        assert refused in json.loads(answer.body)["message"]


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (_LINE + b"X: " + b"v" * 900 + b"\r\n\r\n", None),
        (b"GET /" + b"a" * 1100, 414),
        (b"GET /" + b"a" * 1100 + b" HTTP/1.1\r\n\r\n", 414),
        (_LINE + b"X: " + b"v" * 1100 + b"\r\n\r\n", 431),
        (_LINE + b"X: " + b"v" * 1100, 431),
        (_LINE + b"Content-Length: 5000\r\n\r\n" + b"x" * 5000, None),
    ],
    ids=["under", "line, unfinished", "line", "headers", "headers, unfinished", "the body does not count"],
)
def test_a_head_over_the_limit_is_414_or_431(head: bytes, status: int | None) -> None:
    answer = oversized_head(head, 1024)
    assert (answer.status if answer else None) == status
