"""The HTTP API as one Powertools router, resolved by the ingest and query functions and ``minidrama serve``.

:func:`build_router` returns an ``APIGatewayRestResolver`` holding the routes of the API: the
events route when given a ``sink`` (the ingest function), the read routes and the dashboard when
given a :class:`~minidrama.reading.Reader` (the query function), both for ``minidrama serve``.
The Lambda handlers resolve API Gateway's proxy events with it; the local server turns each HTTP
request into the same event (:mod:`minidrama.gateway`) and resolves it with the same router, so
the deployed and the local contract are one code path.

Adding a route: inside :func:`build_router`, decorate a function with ``@route("GET", RULE)``
(Powertools' rule syntax, ``/v1/apps/<app_id>/...``). It receives the path's ``<names>`` as
arguments, reads the request from ``resolver.current_event`` and returns :func:`json_response`
(or any Powertools ``Response``). ``route`` also records the method, so that the same path with
another method answers ``405`` with an ``Allow`` header rather than ``404``.

Answers that belong to no route: ``404 not_found`` for an unknown path, ``405
method_not_allowed`` for a known path and another method, ``500 internal_error`` for an
exception a route let through (logged with its traceback). All are ``{"error", "message"}``.

Powertools keeps the request being resolved on its router class (one Lambda invocation at a
time), so a process must not resolve two requests at once; the local server resolves them one
after another.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from minidrama.api import ApiResponse, AppDirectory, error_response, handle_post_events
from minidrama.config import APP_ID_PATTERN
from minidrama.ingestion import Sink
from minidrama.lake import Storage
from minidrama.reading import ReadAnswer, Reader

__all__ = [
    "EVENTS_ROUTE",
    "METRICS_ROUTE",
    "DAILY_ROUTE",
    "DAYS_ROUTE",
    "DASHBOARD_ROUTE",
    "ASSET_ROUTE",
    "AnswerHook",
    "build_router",
    "json_response",
]

EVENTS_ROUTE = "/v1/apps/<app_id>/events"
METRICS_ROUTE = "/v1/apps/<app_id>/metrics"
DAILY_ROUTE = "/v1/apps/<app_id>/metrics/daily"
DAYS_ROUTE = "/v1/apps/<app_id>/metrics/days"
DASHBOARD_ROUTE = "/v1/apps/<app_id>/dashboard"
ASSET_ROUTE = "/v1/dashboard/<name>"

# Every read answer: private data, never cached on the way, never sniffed into another type.
_READ_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

AnswerHook = Callable[[str, ApiResponse], None]
"""Called with the app id and the answer of every ``POST .../events`` (the Lambda's metrics and logs)."""

_Handler = TypeVar("_Handler", bound=Callable[..., Any])

logger = logging.getLogger(__name__)


def json_response(answer: ApiResponse) -> Response:
    """The Powertools response of an :class:`~minidrama.api.ApiResponse`: status, JSON body, headers."""
    return Response(
        status_code=answer.status,
        content_type=content_types.APPLICATION_JSON,
        body=answer.body,
        headers=answer.headers,
    )


def read_response(answer: ReadAnswer) -> Response:
    """The Powertools response of a :class:`~minidrama.reading.ReadAnswer`."""
    return Response(
        status_code=answer.status,
        content_type=answer.content_type,
        body=answer.body,
        headers={**_READ_HEADERS, **answer.headers},
    )


def _query(event: Any) -> dict[str, list[str]]:
    return {name: list(values) for name, values in (event.multi_value_query_string_parameters or {}).items()}


def _rule_pattern(rule: str) -> re.Pattern[str]:
    """A Powertools rule as a regex over paths (a ``<name>`` is one segment; a trailing ``/`` is allowed)."""
    parts = re.split(r"<\w+>", rule.rstrip("/"))
    return re.compile("[^/]+".join(re.escape(part) for part in parts) + "/?")


def build_router(
    *,
    directory: AppDirectory,
    storage: Storage,
    sink: Sink | None = None,
    reader: Reader | None = None,
    on_answer: AnswerHook | None = None,
) -> APIGatewayRestResolver:
    """The API's resolver, with 404/405/500 answers for what no route takes.

    With ``sink`` (which takes the accepted events: SQS in AWS, Parquet files locally):
    ``POST /v1/apps/{app_id}/events`` (:mod:`minidrama.api`); ``on_answer`` sees its every answer.
    With ``reader``: ``GET`` of ``.../metrics``, ``.../metrics/daily``, ``.../metrics/days``
    (:mod:`minidrama.reading`), the dashboard page and its files (:mod:`minidrama.dashboard`).
    """
    resolver = APIGatewayRestResolver()
    methods_by_rule: dict[re.Pattern[str], set[str]] = {}

    def route(method: str, rule: str) -> Callable[[_Handler], _Handler]:
        methods_by_rule.setdefault(_rule_pattern(rule), set()).add(method)
        return resolver.route(rule, method)

    if sink is not None:
        events_sink = sink

        @route("POST", EVENTS_ROUTE)
        def post_events(app_id: str) -> Response:
            request = resolver.current_event
            answer = handle_post_events(
                app_id,
                request.headers,
                request.body,
                is_base64_encoded=bool(request.is_base64_encoded),
                directory=directory,
                storage=storage,
                sink=events_sink,
            )
            if on_answer is not None:
                on_answer(app_id, answer)
            return json_response(answer)

    if reader is not None:
        _add_read_routes(route, resolver, reader)

    @resolver.not_found
    def no_route(_error: NotFoundError) -> Response:
        request = resolver.current_event
        path, method = request.path, request.http_method.upper()
        allowed = sorted(
            {
                known
                for pattern, methods in methods_by_rule.items()
                if pattern.fullmatch(path)
                for known in methods
            }
        )
        # A method a route has, on a path it did not take (a value outside its rule): not a 405.
        if allowed and method not in allowed:
            return json_response(
                error_response(
                    405,
                    "method_not_allowed",
                    f"{method} is not allowed on {path}; use {' or '.join(allowed)}",
                    {"Allow": ", ".join(allowed)},
                )
            )
        return json_response(
            error_response(
                404,
                "not_found",
                f"no such endpoint {path!r}; events go to POST /v1/apps/{{app_id}}/events,"
                " metrics come from GET /v1/apps/{app_id}/metrics",
            )
        )

    @resolver.exception_handler(Exception)
    def internal_error(error: Exception) -> Response:
        # A bug, not a client error: answer in the contract's shape and keep the traceback in the log.
        logger.error("a route failed", exc_info=error)
        return json_response(
            error_response(500, "internal_error", "the server failed; retry the same request later")
        )

    return resolver


def _add_read_routes(
    route: Callable[[str, str], Callable[[Callable[..., Response]], Callable[..., Response]]],
    resolver: APIGatewayRestResolver,
    reader: Reader,
) -> None:
    from minidrama import dashboard

    @route("GET", METRICS_ROUTE)
    def get_metrics(app_id: str) -> Response:
        request = resolver.current_event
        return read_response(reader.metrics(app_id, request.headers, _query(request)))

    @route("GET", DAILY_ROUTE)
    def get_daily(app_id: str) -> Response:
        request = resolver.current_event
        return read_response(reader.daily(app_id, request.headers, _query(request)))

    @route("GET", DAYS_ROUTE)
    def get_days(app_id: str) -> Response:
        request = resolver.current_event
        return read_response(reader.days(app_id, request.headers, _query(request)))

    @route("GET", DASHBOARD_ROUTE)
    def get_dashboard(app_id: str) -> Response:
        # The same page for every app id that can be one, registered or not (the page is public and
        # says nothing about which apps exist): the token (in the URL fragment) decides what it shows.
        if not APP_ID_PATTERN.fullmatch(app_id):
            return json_response(
                error_response(404, "not_found", f"{app_id!r} is not an app id: no dashboard")
            )
        page = dashboard.page()
        return Response(200, page.content_type, page.body, headers=dict(page.headers))

    @route("GET", ASSET_ROUTE)
    def get_asset(name: str) -> Response:
        asset = dashboard.asset(name)
        if asset is None:
            return json_response(error_response(404, "not_found", f"the dashboard has no file {name!r}"))
        return Response(200, asset.content_type, asset.body, headers=dict(asset.headers))
