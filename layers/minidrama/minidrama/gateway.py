"""What API Gateway does between an HTTP request and the function, as pure functions for ``minidrama serve``.

- :func:`proxy_event` turns a parsed request into the API Gateway REST proxy event that the
  Lambda handler receives (as ``sam local start-api`` does); the body always travels base64
  encoded, so the router sees the bytes exactly as sent.
- :func:`http_answer` turns the router's proxy answer back into status, headers and body.
- :func:`oversized_head`, :func:`framing_error` and :func:`error_answer` are the answers given
  before any route runs: a request line or headers too long (``414``/``431``), or a request
  whose framing is ambiguous (two ``Content-Length`` headers, or one together with
  ``Transfer-Encoding``), refused with ``400`` as a request smuggling guard.

Nothing here reads a socket or a clock; :mod:`minidrama.server` does the I/O.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from minidrama.api import error_response

__all__ = [
    "HttpRequest",
    "HttpAnswer",
    "proxy_event",
    "http_answer",
    "error_answer",
    "framing_error",
    "oversized_head",
]

_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class HttpRequest:
    """One request as read from the wire: header names keep their case, values are as sent."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    source_ip: str = "127.0.0.1"


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def _path_and_query(target: str) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(target)  # also takes the absolute form "http://host/path?query"
    path = unquote(parts.path) or "/"
    return path, parse_qsl(parts.query, keep_blank_values=True)


def _multi_value(pairs: list[tuple[str, str]]) -> dict[str, list[str]] | None:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped or None


def proxy_event(request: HttpRequest, *, request_id: str, received_at: datetime) -> dict[str, Any]:
    """The API Gateway (REST, proxy integration) event for ``request``, stage ``local``.

    As API Gateway does, ``headers`` holds the last value of a repeated header and
    ``multiValueHeaders`` all of them; ``path`` is percent-decoded and without the query.
    """
    path, query = _path_and_query(request.target)
    multi_headers = _multi_value(request.headers)
    multi_query = _multi_value(query)
    user_agent = next((value for name, value in request.headers if name.lower() == "user-agent"), None)
    return {
        "resource": path,
        "path": path,
        "httpMethod": request.method,
        "headers": {name: values[-1] for name, values in (multi_headers or {}).items()} or None,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {name: values[-1] for name, values in (multi_query or {}).items()} or None,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "httpMethod": request.method,
            "identity": {"sourceIp": request.source_ip, "userAgent": user_agent},
            "path": path,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": received_at.strftime("%d/%b/%Y:%H:%M:%S %z"),
            "requestTimeEpoch": int(received_at.timestamp() * 1000),
            "resourcePath": path,
            "stage": "local",
        },
        "body": base64.b64encode(request.body).decode("ascii") if request.body else None,
        "isBase64Encoded": bool(request.body),
    }


def http_answer(resolved: dict[str, Any]) -> HttpAnswer:
    """The HTTP answer of a proxy response (``statusCode``, ``headers``/``multiValueHeaders``, ``body``)."""
    headers: list[tuple[str, str]] = []
    multi = resolved.get("multiValueHeaders") or {}
    for name, value in (resolved.get("headers") or {}).items():
        if name not in multi:
            headers.append((name, str(value)))
    for name, values in multi.items():
        headers.extend((name, str(value)) for value in values)
    body = resolved.get("body") or ""
    payload = base64.b64decode(body) if resolved.get("isBase64Encoded") else str(body).encode("utf-8")
    return HttpAnswer(int(resolved["statusCode"]), headers, payload)


def error_answer(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> HttpAnswer:
    """An answer in the contract's error shape ``{"error", "message"}``, given before any route runs."""
    answer = error_response(status, code, message, headers)
    return HttpAnswer(
        status,
        [("Content-Type", "application/json"), *answer.headers.items()],
        json.dumps(answer.body, separators=(",", ":")).encode(),
    )


def oversized_head(head: bytes, limit: int) -> HttpAnswer | None:
    """``414`` when the request line alone is over ``limit`` bytes, ``431`` when it and the headers are."""
    end = _END_OF_HEAD.search(head)
    size = end.end() if end else len(head)
    if size <= limit:
        return None
    if b"\n" not in head[:limit]:
        return error_answer(414, "uri_too_long", f"the request line is over {limit} bytes")
    return error_answer(
        431, "headers_too_large", f"the request line and headers are over {limit} bytes together"
    )


def framing_error(head: bytes) -> HttpAnswer | None:
    """A ``400`` for a request head whose body length is ambiguous, else ``None``.

    ``head`` is the request line and headers as received. Refused: ``Content-Length`` given twice
    (even with equal values, or as a list ``5, 5``) and ``Content-Length`` together with
    ``Transfer-Encoding``. The HTTP parser merges equal lengths, so this reads the raw lines.
    """
    lines = _END_OF_HEAD.split(head, maxsplit=1)[0].split(b"\n")[1:]
    fields = [
        (name.strip().lower(), value)
        for name, value in (line.split(b":", 1) for line in lines if b":" in line)
    ]
    lengths = [value for name, value in fields if name == b"content-length"]
    if len(lengths) > 1 or any(b"," in value for value in lengths):
        return error_answer(
            400, "malformed_request", "the request has more than one Content-Length: send exactly one"
        )
    if lengths and any(name == b"transfer-encoding" for name, _value in fields):
        return error_answer(
            400,
            "malformed_request",
            "the request has both Content-Length and Transfer-Encoding: send one of them",
        )
    return None
