"""The HTTP contract of ``POST /v1/apps/{app_id}/events``, shared by the ingest function and the local server.

:func:`handle_post_events` takes the app id from the path, the request headers and the raw
body, and returns an :class:`ApiResponse` (status and JSON body). It is the route of
:mod:`minidrama.router`, which the Lambda handler and the local server both resolve through.
``openapi.yaml`` beside this module documents the same contract.

Checks, in order (the first that fails answers):

1. ``401`` no ``x-api-key`` header (any letter case).
2. ``404`` the app is unknown (or its id is not a valid app id).
3. ``403`` the key is not the app's key (constant-time comparison of hashes).
4. ``413`` body over 1 MiB; ``400`` body not UTF-8 JSON ``{"events": [...]}`` (UTF-16, UTF-32 and
   a byte order mark included, which ``json.loads`` alone would take); ``413`` over 1,000 events.
5. ``202`` ``{"accepted": N, "rejected": [{"index", "event_id", "errors"}]}`` once the accepted
   events are durable; ``503`` when they could not be made durable (retry the request).

Authentication comes first so that a caller without a key learns nothing, and the body is only
read for a caller holding a key. The contract requires 404 for an unknown app, so a caller with
any key can tell whether an app id exists; it cannot learn more (not the settings, not whether
its key is close). Every error body is ``{"error": "<code>", "message": "<what is wrong>"}``.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from minidrama.config import APP_ID_PATTERN, AppConfig, Rates, api_key_matches, load_apps, load_rates
from minidrama.ingestion import (
    MAX_BODY_BYTES,
    MalformedRequestError,
    RequestError,
    Sink,
    TableSink,
    ingest,
    ingest_body,
    parse_request_body,
)
from minidrama.lake import Storage

__all__ = [
    "API_KEY_HEADER",
    "EVENTS_PATH_TEMPLATE",
    "ApiResponse",
    "AppDirectory",
    "error_response",
    "request_body_bytes",
    "require_utf8_text",
    "handle_post_events",
]

API_KEY_HEADER = "x-api-key"
EVENTS_PATH_TEMPLATE = "/v1/apps/{app_id}/events"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    accepted: int = 0  # counts for metrics and logs
    rejected: int = 0


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> ApiResponse:
    return ApiResponse(status, {"error": code, "message": message}, headers or {})


class AppDirectory:
    """The registered apps and rates of a lake, re-read at most every ``ttl_seconds``.

    An unknown app or a key that does not match triggers an early re-read (at most every
    ``recheck_seconds``), so an app registered or a key rotated with ``minidrama apps add``
    works within seconds without reading the configuration on every request.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        ttl_seconds: float = 60.0,
        recheck_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.storage = storage
        self.ttl_seconds = ttl_seconds
        self.recheck_seconds = recheck_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._loaded_at: float | None = None
        self._apps: Mapping[str, AppConfig] = {}
        self._rates = Rates()

    def _refresh(self, max_age: float) -> None:
        with self._lock:
            now = self.clock()
            if self._loaded_at is None or now - self._loaded_at >= max_age:
                self._apps = load_apps(self.storage)
                self._rates = load_rates(self.storage)
                self._loaded_at = now

    def app(self, app_id: str) -> AppConfig | None:
        self._refresh(self.ttl_seconds)
        found = self._apps.get(app_id)
        if found is None:
            self._refresh(self.recheck_seconds)
            found = self._apps.get(app_id)
        return found

    def key_matches(self, app_id: str, api_key: str) -> bool:
        app = self.app(app_id)
        if app is not None and api_key_matches(app, api_key):
            return True
        self._refresh(self.recheck_seconds)
        app = self._apps.get(app_id)
        return app is not None and api_key_matches(app, api_key)

    def rates(self) -> Rates:
        self._refresh(self.ttl_seconds)
        return self._rates


class _BadBase64(RequestError):
    """A base64-flagged body that does not decode."""

    status = 400
    code = "malformed_request"


def request_body_bytes(body: str | bytes | None, is_base64_encoded: bool = False) -> bytes:
    """The raw body of an API Gateway proxy event (which may be base64-encoded)."""
    if body is None:
        return b""
    if is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as error:
            raise _BadBase64(f"request body is marked base64 but does not decode: {error}") from error
    return body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body


def require_utf8_text(body: bytes) -> bytes:
    """``body`` if it is UTF-8 without a byte order mark, else :class:`MalformedRequestError`.

    ``json.loads`` on bytes guesses UTF-16 and UTF-32 from NUL bytes and skips a BOM; the contract
    takes UTF-8 only. JSON text never holds a raw NUL byte, so one means another encoding.
    """
    if body.startswith(codecs.BOM_UTF8):
        raise MalformedRequestError("request body starts with a byte order mark: send UTF-8 without one")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedRequestError(
            f"request body is not UTF-8 text: {error.reason} at byte {error.start}"
        ) from error
    if b"\x00" in body:
        raise MalformedRequestError(
            f"request body is not UTF-8 JSON text: a NUL byte at byte {body.index(0)} (UTF-16 or UTF-32?)"
        )
    return body


def _unavailable(message: str) -> ApiResponse:
    return error_response(503, "unavailable", message, {"Retry-After": "1"})


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            if isinstance(value, list | tuple):
                return str(value[0]) if value else None
            return None if value is None else str(value)
    return None


def handle_post_events(
    app_id: str,
    headers: Mapping[str, Any] | None,
    body: str | bytes | None,
    *,
    directory: AppDirectory,
    storage: Storage,
    sink: Sink,
    is_base64_encoded: bool = False,
    received_at: datetime | None = None,
) -> ApiResponse:
    """Answer one ``POST /v1/apps/{app_id}/events`` (see the module docstring for the order of checks)."""
    api_key = _header(headers, API_KEY_HEADER)
    if not api_key:
        return error_response(
            401, "missing_api_key", f"missing the {API_KEY_HEADER} header with the app's API key"
        )
    try:
        app = directory.app(app_id) if APP_ID_PATTERN.fullmatch(app_id) else None
        key_matches = app is not None and directory.key_matches(app_id, api_key)
        rates = directory.rates()
    except Exception:
        logger.exception("reading the app configuration failed", extra={"app_id": app_id})
        return _unavailable("the app configuration could not be read; retry the same request later")
    if app is None:
        return error_response(404, "unknown_app", f"no app {app_id!r} is registered")
    if not key_matches:
        return error_response(
            403, "invalid_api_key", f"the {API_KEY_HEADER} header is not the API key of app {app_id!r}"
        )
    try:
        raw = request_body_bytes(body, is_base64_encoded)
        # Over the limit is a 413 whatever the bytes are; parse_request_body says so.
        text = raw if len(raw) > MAX_BODY_BYTES else require_utf8_text(raw)
        events = [] if isinstance(sink, TableSink) else parse_request_body(text)
    except RequestError as error:
        return error_response(error.status, error.code, str(error))
    received = received_at or datetime.now(UTC)
    try:
        if isinstance(sink, TableSink):  # a local lake: the bulk path, same outcomes, faster
            result = ingest_body(storage, sink, app, text, received_at=received, rates=rates)
        else:
            result = ingest(storage, sink, app, events, received_at=received, rates=rates)
    except RequestError as error:  # the bulk path reads the body itself
        return error_response(error.status, error.code, str(error))
    except Exception:
        # Whatever failed (queue, storage), the events are not known to be durable: the client
        # must retry the whole request; events stored twice are deduplicated by event_id.
        logger.exception("storing a batch failed", extra={"app_id": app_id, "events": len(events)})
        return _unavailable("the events could not be stored; retry the same request later")
    return ApiResponse(
        202,
        {
            "accepted": result.accepted,
            "rejected": [
                {"index": rejection.index, "event_id": rejection.event_id, "errors": rejection.errors}
                for rejection in result.rejected
            ],
        },
        accepted=result.accepted,
        rejected=len(result.rejected),
    )
