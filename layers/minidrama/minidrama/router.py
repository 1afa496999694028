"""The HTTP API as one Powertools router: the ingest function and ``minidrama serve`` both resolve through it.

:func:`build_router` returns an ``APIGatewayRestResolver`` holding every route of the API. The
Lambda handler resolves API Gateway's proxy events with it; the local server turns each HTTP
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
from minidrama.ingestion import Sink
from minidrama.lake import Storage

__all__ = ["EVENTS_ROUTE", "AnswerHook", "build_router", "json_response"]

EVENTS_ROUTE = "/v1/apps/<app_id>/events"

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


def _rule_pattern(rule: str) -> re.Pattern[str]:
    """A Powertools rule as a regex over paths (a ``<name>`` is one segment; a trailing ``/`` is allowed)."""
    parts = re.split(r"<\w+>", rule.rstrip("/"))
    return re.compile("[^/]+".join(re.escape(part) for part in parts) + "/?")


def build_router(
    *,
    directory: AppDirectory,
    storage: Storage,
    sink: Sink,
    on_answer: AnswerHook | None = None,
) -> APIGatewayRestResolver:
    """The API's resolver: ``POST /v1/apps/{app_id}/events`` (:mod:`minidrama.api`) and 404/405/500 answers.

    ``sink`` takes the accepted events (SQS in AWS, Parquet files locally); ``on_answer`` sees
    every answer of the events route.
    """
    resolver = APIGatewayRestResolver()
    methods_by_rule: dict[re.Pattern[str], set[str]] = {}

    def route(method: str, rule: str) -> Callable[[_Handler], _Handler]:
        methods_by_rule.setdefault(_rule_pattern(rule), set()).add(method)
        return resolver.route(rule, method)

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
            sink=sink,
        )
        if on_answer is not None:
            on_answer(app_id, answer)
        return json_response(answer)

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
                404, "not_found", f"no such endpoint {path!r}; events go to POST /v1/apps/{{app_id}}/events"
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
