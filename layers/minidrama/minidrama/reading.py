"""The read API (SPEC section 8): metrics documents over HTTP, for a read token.

Routes (see :func:`minidrama.router.build_router`), each answered by one method of :class:`Reader`:

- ``GET /v1/apps/{app_id}/metrics?from=F&to=T[&segment=SEG ...][&format=csv]``: the range
  document of F..T (section 7), JSON or CSV (``format=csv`` or ``Accept: text/csv``).
- ``GET /v1/apps/{app_id}/metrics/daily?from=F&to=T[&segment=SEG ...][&format=csv]``: the
  daily documents of F..T, ``{"app_id", "from", "to", "documents": [...]}``; CSV has one row per
  day and one column per metric of the (one) segment.
- ``GET /v1/apps/{app_id}/metrics/days``: what can be read, ``{"app_id", "timezone",
  "currency", "today", "first_day", "last_day"}``: the app's calendar day now and its computed
  days that have ended (the dashboard's presets count back from ``last_day``).

Without ``from`` and ``to`` a range is the last 7 computed days that have ended (SPEC 8's
default), or fewer back to a day never computed.

Checks, in order: ``401`` no token, ``401`` a token that is malformed, tampered,
signed with another (or a rotated) secret, or expired, ``403`` a token of another app, ``404``
an app that is not registered, ``400`` a bad parameter (the message names it), ``404`` a day of
the range that was never computed or a segment without events in it.

Range documents are kept in memory by the facts files they are computed from (content-named and
listed in the facts index, which a recompute rewrites), so asking again for a range is a lookup
and never serves a document older than its facts.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from minidrama.api import AppDirectory
from minidrama.config import APP_ID_PATTERN, AppConfig
from minidrama.lake import Storage
from minidrama.metrics.exceptions import DamagedFacts, MetricsError, MissingDays, UnknownSegment
from minidrama.tokens import SecretSource, TokenError, bearer_token, verify_token

__all__ = ["ReadAnswer", "Reader", "MAX_RANGE_DAYS", "DEFAULT_RANGE_DAYS"]

MAX_RANGE_DAYS = 400  # a little over a year, so "the last 365 days" and a leap year fit
DEFAULT_RANGE_DAYS = 7
CSV_TYPE = "text/csv; charset=utf-8"
JSON_TYPE = "application/json"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadAnswer:
    """One answer of the read API: status, content type, body and extra headers."""

    status: int
    content_type: str
    body: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def error(cls, status: int, code: str, message: str) -> ReadAnswer:
        return cls(status, JSON_TYPE, json.dumps({"error": code, "message": message}))

    @classmethod
    def json(cls, body: Any) -> ReadAnswer:
        return cls(
            200, JSON_TYPE, json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        )


class _BadRequest(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _one(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name) or []
    if len(values) > 1:
        raise _BadRequest(400, "invalid_parameter", f"{name} is given {len(values)} times: give it once")
    return values[0] if values else None


def _day(query: Mapping[str, Sequence[str]], name: str) -> date | None:
    text = _one(query, name)
    if text is None:
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise _BadRequest(
            400, "invalid_parameter", f"{name}={text!r} is not a date like 2026-11-28"
        ) from None


def _wants_csv(query: Mapping[str, Sequence[str]], headers: Mapping[str, Any] | None) -> bool:
    chosen = _one(query, "format")
    if chosen is not None:
        if chosen not in ("json", "csv"):
            raise _BadRequest(400, "invalid_parameter", f"format={chosen!r}: use json or csv")
        return chosen == "csv"
    accept = next((str(value) for name, value in (headers or {}).items() if name.lower() == "accept"), "")
    return _preferred(accept) == "text/csv"


def _preferred(accept: str) -> str:
    """Of JSON and CSV, the type ``accept`` prefers (RFC 9110 q-values; JSON unless CSV ranks higher)."""
    weights = {"application/json": 0.0, "text/csv": 0.0}
    for item in accept.lower().split(","):
        media, *parameters = (part.strip() for part in item.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media in weights:
            weights[media] = max(weights[media], quality)
    return "text/csv" if weights["text/csv"] > weights["application/json"] else "application/json"


class _RangeCache:
    """The last few range documents, by app and the facts files they were computed from."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._documents: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> dict[str, Any] | None:
        with self._lock:
            document = self._documents.get(key)
            if document is not None:
                self._documents.move_to_end(key)
            return document

    def put(self, key: tuple[Any, ...], document: dict[str, Any]) -> None:
        with self._lock:
            self._documents[key] = document
            self._documents.move_to_end(key)
            while len(self._documents) > self.size:
                self._documents.popitem(last=False)


class Reader:
    """Answers the read routes for one lake; ``secret`` signs the tokens it accepts."""

    def __init__(
        self,
        storage: Storage,
        directory: AppDirectory,
        secret: SecretSource,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        cache_size: int = 64,
    ) -> None:
        self.storage = storage
        self.directory = directory
        self.secret = secret
        self.clock = clock
        self._cache = _RangeCache(cache_size)

    # --- the routes ------------------------------------------------------------------------

    def metrics(
        self, app_id: str, headers: Mapping[str, Any] | None, query: Mapping[str, Sequence[str]]
    ) -> ReadAnswer:
        """``GET .../metrics``: the range document, JSON or CSV."""
        return self._answer(app_id, headers, query, self._metrics)

    def daily(
        self, app_id: str, headers: Mapping[str, Any] | None, query: Mapping[str, Sequence[str]]
    ) -> ReadAnswer:
        """``GET .../metrics/daily``: the daily documents of the range, JSON or CSV."""
        return self._answer(app_id, headers, query, self._daily)

    def days(
        self, app_id: str, headers: Mapping[str, Any] | None, query: Mapping[str, Sequence[str]]
    ) -> ReadAnswer:
        """``GET .../metrics/days``: the app's today and the span of its computed days."""
        return self._answer(app_id, headers, query, self._days)

    # --- shared steps ----------------------------------------------------------------------

    def _answer(
        self,
        app_id: str,
        headers: Mapping[str, Any] | None,
        query: Mapping[str, Sequence[str]],
        handler: Callable[[AppConfig, Mapping[str, Any] | None, Mapping[str, Sequence[str]]], ReadAnswer],
    ) -> ReadAnswer:
        try:
            app = self._authorize(app_id, headers)
            return handler(app, headers, query)
        except TokenError as error:
            return ReadAnswer.error(error.status, error.code, str(error))
        except _BadRequest as error:
            return ReadAnswer.error(error.status, error.code, str(error))
        except MissingDays as error:
            return ReadAnswer.error(404, "not_computed", str(error))
        except UnknownSegment as error:
            return ReadAnswer.error(404, "unknown_segment", str(error))
        except DamagedFacts as error:
            logger.error("damaged facts", extra={"app_id": app_id, "error": str(error)})
            return ReadAnswer.error(500, "damaged_facts", f"{error}")
        except MetricsError as error:
            return ReadAnswer.error(400, "invalid_parameter", str(error))

    def _authorize(self, app_id: str, headers: Mapping[str, Any] | None) -> AppConfig:
        token = bearer_token(headers)
        verify_token(self.secret.current(), token, app_id, self.clock())
        app = self.directory.app(app_id) if APP_ID_PATTERN.fullmatch(app_id) else None
        if app is None:
            raise _BadRequest(404, "unknown_app", f"no app {app_id!r} is registered")
        return app

    def _index(self, app: AppConfig) -> Any:
        from minidrama.metrics.facts import FactsIndex

        return FactsIndex.load(self.storage, app.app_id, app.timezone)

    def _today(self, app: AppConfig) -> date:
        return self.clock().astimezone(app.zone).date()

    def _range(self, app: AppConfig, query: Mapping[str, Sequence[str]], index: Any) -> tuple[date, date]:
        first, last = _day(query, "from"), _day(query, "to")
        if first is None and last is None:
            ended = [day for day in index.days if day < self._today(app)]
            if not ended:
                raise MissingDays(app.app_id, [self._today(app) - timedelta(days=1)])
            # The last 7 computed days that ended, back to a gap at most: the default always reads.
            last = first = max(ended)
            while (
                last - first < timedelta(days=DEFAULT_RANGE_DAYS - 1)
                and first - timedelta(days=1) in index.days
            ):
                first -= timedelta(days=1)
            return first, last
        if first is None or last is None:
            raise _BadRequest(
                400, "invalid_parameter", "give both from and to (or neither, for the last 7 computed days)"
            )
        if first > last:
            raise _BadRequest(400, "invalid_parameter", f"from={first} is after to={last}")
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise _BadRequest(
                400,
                "invalid_parameter",
                f"from={first} to={last} is {(last - first).days + 1} days; at most {MAX_RANGE_DAYS} at once",
            )
        return first, last

    @staticmethod
    def _segments(query: Mapping[str, Sequence[str]]) -> list[str]:
        return [value for value in query.get("segment") or [] if value]

    # --- the answers -----------------------------------------------------------------------

    def range_document(self, app: AppConfig, first: date, last: date, index: Any) -> dict[str, Any]:
        """The range document of every segment, computed once per set of facts files."""
        from minidrama.metrics.ranges import query_range

        days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
        missing = [day for day in days if day not in index.days]
        if missing:
            raise MissingDays(app.app_id, missing)
        key = (
            app.app_id,
            app.timezone,
            app.currency,
            first,
            last,
            tuple(entry.sha256 for day in days for entry in index.days[day].values()),
        )
        document = self._cache.get(key)
        if document is None:
            document = query_range(self.storage, app, first, last, index=index)
            self._cache.put(key, document)
        return document

    def _metrics(
        self, app: AppConfig, headers: Mapping[str, Any] | None, query: Mapping[str, Sequence[str]]
    ) -> ReadAnswer:
        from minidrama.metrics.ranges import select_segments
        from minidrama.metrics.tabular import document_csv

        csv = _wants_csv(query, headers)
        index = self._index(app)
        first, last = self._range(app, query, index)
        document = self.range_document(app, first, last, index)
        segments = self._segments(query)
        if segments:
            document = select_segments(document, segments)
        if csv:
            return ReadAnswer(200, CSV_TYPE, document_csv(document), _attachment(app, first, last, "metrics"))
        return ReadAnswer.json(document)

    def _daily(
        self, app: AppConfig, headers: Mapping[str, Any] | None, query: Mapping[str, Sequence[str]]
    ) -> ReadAnswer:
        from minidrama.metrics import daily_documents
        from minidrama.metrics.tabular import series_csv

        csv = _wants_csv(query, headers)
        first, last = self._range(app, query, self._index(app))
        documents = daily_documents(self.storage, app, first, last)
        segments = self._segments(query)
        if csv:
            if len(segments) > 1:
                raise _BadRequest(400, "invalid_parameter", "CSV of daily series takes one segment")
            body = series_csv(documents, segments[0] if segments else "all")
            return ReadAnswer(200, CSV_TYPE, body, _attachment(app, first, last, "daily"))
        if segments:
            seen = {name for document in documents.values() for name in document["segments"]}
            unknown = [segment for segment in segments if segment not in seen]
            if unknown:
                raise UnknownSegment(f"segment {unknown[0]!r} has no events in {first}..{last}")
            documents = {
                day: {
                    **document,
                    "segments": {
                        name: value for name, value in document["segments"].items() if name in segments
                    },
                }
                for day, document in documents.items()
            }
        return ReadAnswer.json(
            {
                "app_id": app.app_id,
                "from": first.isoformat(),
                "to": last.isoformat(),
                "documents": [documents[day] for day in sorted(documents)],
            }
        )

    def _days(
        self, app: AppConfig, headers: Mapping[str, Any] | None, query: Mapping[str, Sequence[str]]
    ) -> ReadAnswer:
        index = self._index(app)
        today = self._today(app)
        ended = sorted(day for day in index.days if day < today)
        return ReadAnswer.json(
            {
                "app_id": app.app_id,
                "timezone": app.timezone,
                "currency": app.currency,
                "today": today.isoformat(),
                "first_day": ended[0].isoformat() if ended else None,
                "last_day": ended[-1].isoformat() if ended else None,
            }
        )


def _attachment(app: AppConfig, first: date, last: date, what: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{app.app_id}-{what}-{first}-{last}.csv"'}
