"""The read API in-process, through the router as `minidrama serve` builds it (a Reader with the
lake's read secret): every status in the order of checks, the documents against the metrics
engine's own, the cache, the security headers, the dashboard page and its files."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

import minidrama.dashboard
from minidrama.api import AppDirectory
from minidrama.config import AppConfig, get_app, register_app
from minidrama.gateway import HttpRequest, http_answer, proxy_event
from minidrama.ingestion import MAX_BODY_BYTES, ingest_events
from minidrama.lake import APPS_CONFIG_KEY, LocalStorage
from minidrama.metrics import compute_days, daily_documents, query_range
from minidrama.metrics.tabular import document_csv, series_csv
from minidrama.reading import Reader
from minidrama.router import build_router
from minidrama.server import Limits, serve_in_background
from minidrama.simulator import simulate
from minidrama.tokens import LakeSecret, issue_token
from minidrama.writer import ParquetSink
from tests.contract import (
    DAILY_PATH,
    DASHBOARD_PATH,
    DAYS_PATH,
    FILES_PATH,
    GATEWAY_5XX_STATUSES,
    METRICS_PATH,
    READ_PATHS,
    assert_documented,
    documented_error_codes,
    documented_statuses,
    gateway_answers,
    openapi,
)
from tests.e2e.serving import raw_exchange
from tests.metrics_support import event, without_generated_at

APP, OTHER, GHOST = "app-1", "app-2", "ghost"  # GHOST is never registered
TIMEZONE = "America/Los_Angeles"
DAYS = [date(2026, 11, 1) + timedelta(days=offset) for offset in range(10)]  # 11-01 .. 11-10
# The Reader's clock: 23:00 on 11-10 in Los Angeles (07:00 on 11-11 in UTC), so 11-10 has not ended.
NOW = datetime(2026, 11, 11, 7, tzinfo=UTC)
DEFAULT_FIRST, DEFAULT_LAST = date(2026, 11, 3), date(2026, 11, 9)  # the last 7 ended computed days
RANGE = "from=2026-11-03&to=2026-11-09"


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStorage, str]:
    """Ten computed days of a small simulated app in Los Angeles (and its ingest key), a second
    registered app, a read secret."""
    lake = LocalStorage(tmp_path_factory.mktemp("read") / "lake")
    app, api_key = register_app(lake, APP, TIMEZONE)
    register_app(lake, OTHER)
    for _day, events in simulate(DAYS[0], len(DAYS), seed=8, timezone=TIMEZONE, new_users_per_day=6):
        ingest_events(lake, app, events, received_at=datetime(2026, 11, 12, tzinfo=UTC))
    compute_days(lake, app, DAYS, now=NOW)
    LakeSecret(lake, create=True).current()
    return lake, api_key


@pytest.fixture(scope="module")
def computed(registered: tuple[LocalStorage, str]) -> LocalStorage:
    return registered[0]


@pytest.fixture
def copied(computed: LocalStorage, tmp_path: Path) -> LocalStorage:
    """A copy of the computed lake, to change."""
    shutil.copytree(computed.root, tmp_path / "lake")
    return LocalStorage(tmp_path / "lake")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def documented_body(self) -> Any:
        return self.json() if self.headers["content-type"].startswith("application/json") else self.text


class Api:
    """The router of `minidrama serve` on a lake, with the Reader's clock at NOW."""

    def __init__(self, lake: LocalStorage, ingest_key: str = "") -> None:
        self.lake = lake
        self.ingest_key = ingest_key
        directory = AppDirectory(lake, ttl_seconds=2.0, recheck_seconds=0.0)
        self.reader = Reader(lake, directory, LakeSecret(lake), clock=lambda: NOW)
        self.router = build_router(
            directory=directory, storage=lake, sink=ParquetSink(lake), reader=self.reader
        )

    def token(self, app_id: str = APP, expires_at: datetime = NOW + timedelta(days=14)) -> str:
        return issue_token(LakeSecret(self.lake).current(), app_id, expires_at).token

    def get(
        self, target: str, authorization: str | None = "token", *headers: tuple[str, str], method: str = "GET"
    ) -> Answer:
        """One request; ``authorization`` "token" is a valid Bearer token of APP, None no header."""
        if authorization == "token":
            authorization = f"Bearer {self.token()}"
        fields = [*headers, *([("Authorization", authorization)] if authorization is not None else [])]
        event = proxy_event(HttpRequest(method, target, fields), request_id="test", received_at=NOW)
        answer = http_answer(self.router.resolve(event, LambdaContext()))
        return Answer(answer.status, {name.lower(): value for name, value in answer.headers}, answer.body)


@pytest.fixture(scope="module")
def api(registered: tuple[LocalStorage, str]) -> Api:
    return Api(*registered)


@pytest.fixture(scope="module")
def app(computed: LocalStorage) -> AppConfig:
    found = get_app(computed, APP)
    assert found is not None
    return found


def _template(target: str) -> str:
    """The documented path a request target falls under (its segments not yet percent-decoded)."""
    path = target.split("?", 1)[0]
    for template in sorted(openapi()["paths"], key=len, reverse=True):
        if re.fullmatch(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)), path):
            return template
    raise AssertionError(f"{target} is under no documented path")


# --- every status, in the order of checks ----------------------------------------------------

M, D, DY = f"/v1/apps/{APP}/metrics", f"/v1/apps/{APP}/metrics/daily", f"/v1/apps/{APP}/metrics/days"


def _tampered(token: str) -> str:
    """``token`` with one character of its signature changed."""
    return token[:-10] + ("B" if token[-10] == "A" else "A") + token[-9:]


def _credentials(api: Api, name: str) -> str | None:
    return {
        "token": f"Bearer {api.token()}",
        "none": None,
        "tampered": f"Bearer {_tampered(api.token())}",
        "expired": f"Bearer {api.token(expires_at=NOW)}",
        "another app's": f"Bearer {api.token(OTHER)}",
        "the ghost's": f"Bearer {api.token(GHOST)}",
        "an invalid id's": f"Bearer {api.token('no such app')}",
        "the ingest key as Bearer": f"Bearer {api.ingest_key}",
        "Basic": "Basic YXBwLTE6c2VjcmV0",
        "non-ASCII": "Bearer mdr1.\u00e9t\u00e9.AAAA",
    }[name]


# name: (method, target, credentials, status, error code)
STATUSES: dict[str, tuple[str, str, str, int, str]] = {
    "range": ("GET", f"{M}?{RANGE}", "token", 200, ""),
    "range, default days": ("GET", M, "token", 200, ""),
    "range CSV": ("GET", f"{M}?{RANGE}&format=csv", "token", 200, ""),
    "daily": ("GET", f"{D}?{RANGE}", "token", 200, ""),
    "daily CSV": ("GET", f"{D}?{RANGE}&format=csv", "token", 200, ""),
    "days": ("GET", DY, "token", 200, ""),
    "dashboard": ("GET", f"/v1/apps/{APP}/dashboard", "none", 200, ""),
    "dashboard of any app": ("GET", f"/v1/apps/{GHOST}/dashboard", "none", 200, ""),
    "a file": ("GET", "/v1/dashboard/dashboard.js?v=0123456789ab", "none", 200, ""),
    "no token": ("GET", f"{M}?{RANGE}", "none", 401, "missing_token"),
    "no token, daily": ("GET", f"{D}?{RANGE}", "none", 401, "missing_token"),
    "no token, days": ("GET", DY, "none", 401, "missing_token"),
    "Basic": ("GET", f"{M}?{RANGE}", "Basic", 401, "invalid_token"),
    "tampered": ("GET", f"{M}?{RANGE}", "tampered", 401, "invalid_token"),
    "non-ASCII token": ("GET", f"{M}?{RANGE}", "non-ASCII", 401, "invalid_token"),
    "tampered, daily": ("GET", f"{D}?{RANGE}", "tampered", 401, "invalid_token"),
    "ingest key as Bearer": ("GET", DY, "the ingest key as Bearer", 401, "invalid_token"),
    "expired": ("GET", f"{M}?{RANGE}", "expired", 401, "token_expired"),
    "expired, days": ("GET", DY, "expired", 401, "token_expired"),
    "another app's token": ("GET", f"{M}?{RANGE}", "another app's", 403, "token_for_another_app"),
    "another app's token, daily": ("GET", f"{D}?{RANGE}", "another app's", 403, "token_for_another_app"),
    "another app's token, days": ("GET", DY, "another app's", 403, "token_for_another_app"),
    "unregistered app": ("GET", f"/v1/apps/{GHOST}/metrics?{RANGE}", "the ghost's", 404, "unknown_app"),
    "unregistered app, daily": ("GET", f"/v1/apps/{GHOST}/metrics/daily", "the ghost's", 404, "unknown_app"),
    "unregistered app, days": ("GET", f"/v1/apps/{GHOST}/metrics/days", "the ghost's", 404, "unknown_app"),
    "invalid app id": ("GET", "/v1/apps/no%20such%20app/metrics", "an invalid id's", 404, "unknown_app"),
    "an app id the router does not take": ("GET", "/v1/apps/a%22b/metrics", "token", 404, "not_found"),
    "dashboard of no possible app": ("GET", "/v1/apps/null%2Cnull/dashboard", "none", 404, "not_found"),
    "not a date": ("GET", f"{M}?from=2026-11-3&to=2026-11-09", "token", 400, "invalid_parameter"),
    "no such day": ("GET", f"{M}?from=2026-02-30&to=2026-03-01", "token", 400, "invalid_parameter"),
    "a date-time": ("GET", f"{D}?from=2026-11-03T00:00&to=2026-11-09", "token", 400, "invalid_parameter"),
    "from after to": ("GET", f"{M}?from=2026-11-09&to=2026-11-03", "token", 400, "invalid_parameter"),
    "only from": ("GET", f"{M}?from=2026-11-03", "token", 400, "invalid_parameter"),
    "only to": ("GET", f"{D}?to=2026-11-09", "token", 400, "invalid_parameter"),
    "401 days": ("GET", f"{M}?from=2025-10-05&to=2026-11-09", "token", 400, "invalid_parameter"),
    "format=xml": ("GET", f"{M}?{RANGE}&format=xml", "token", 400, "invalid_parameter"),
    "from twice": ("GET", f"{M}?{RANGE}&from=2026-11-04", "token", 400, "invalid_parameter"),
    "format twice": ("GET", f"{D}?{RANGE}&format=csv&format=csv", "token", 400, "invalid_parameter"),
    "daily CSV of two segments": (
        "GET",
        f"{D}?{RANGE}&format=csv&segment=all&segment=os:ios",
        "token",
        400,
        "invalid_parameter",
    ),
    "a day never computed": ("GET", f"{M}?from=2026-10-30&to=2026-11-02", "token", 404, "not_computed"),
    "a day never computed, daily": (
        "GET",
        f"{D}?from=2026-11-09&to=2026-11-11",
        "token",
        404,
        "not_computed",
    ),
    "unknown segment": ("GET", f"{M}?{RANGE}&segment=region:FR", "token", 404, "unknown_segment"),
    "unknown segment, daily": ("GET", f"{D}?{RANGE}&segment=os:symbian", "token", 404, "unknown_segment"),
    "unknown segment, daily CSV": (
        "GET",
        f"{D}?{RANGE}&segment=os:symbian&format=csv",
        "token",
        404,
        "unknown_segment",
    ),
    "no such file": ("GET", "/v1/dashboard/index.html", "none", 404, "not_found"),
    "POST on the range": ("POST", f"{M}?{RANGE}", "token", 405, "method_not_allowed"),
    "DELETE on daily": ("DELETE", D, "token", 405, "method_not_allowed"),
    "HEAD on days": ("HEAD", DY, "token", 405, "method_not_allowed"),
    "OPTIONS on the dashboard": ("OPTIONS", f"/v1/apps/{APP}/dashboard", "none", 405, "method_not_allowed"),
    "PUT on a file": ("PUT", "/v1/dashboard/format.js", "none", 405, "method_not_allowed"),
}


@pytest.mark.parametrize("name", list(STATUSES))
def test_every_status_of_the_read_routes_is_documented(api: Api, name: str) -> None:
    method, target, credentials, status, code = STATUSES[name]
    # WHEN the request is resolved
    answer = api.get(target, _credentials(api, credentials), method=method)
    # THEN it has the expected status and error code, with a message
    body = answer.documented_body
    assert (answer.status, body.get("error", "") if status >= 400 else "") == (status, code), body
    if status >= 400:
        assert body["message"]
    # AND it is an answer openapi.yaml documents for the path's operation (a 405 is the GET's too)
    assert_documented(answer.status, body, answer.headers, path=_template(target), method="get")


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        ("none", (401, "missing_token")),
        ("tampered", (401, "invalid_token")),
        ("expired", (401, "token_expired")),
        ("another app's", (403, "token_for_another_app")),
        ("token", (400, "invalid_parameter")),
    ],
)
def test_credentials_are_checked_before_the_parameters(api: Api, credentials: str, expected: tuple) -> None:
    # GIVEN a request with every parameter wrong, WHEN it is sent with these credentials
    answer = api.get(f"{M}?from=yesterday&format=xml&segment=nope", _credentials(api, credentials))
    # THEN the first failing check answers: a caller without a valid token learns nothing more
    assert (answer.status, answer.json()["error"]) == expected


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [("none", 401), ("another app's", 403), ("the ghost's", 404)],
)
def test_an_unregistered_app_is_named_only_to_a_token_signed_for_it(
    api: Api, credentials: str, expected: int
) -> None:
    # WHEN an app that is not registered is read, THEN only its own token learns that it is not
    answer = api.get(f"/v1/apps/{GHOST}/metrics?from=yesterday", _credentials(api, credentials))
    assert answer.status == expected
    assert (answer.json()["error"] == "unknown_app") is (expected == 404)


def test_the_ingest_key_never_reads(tmp_path: Path) -> None:
    # GIVEN a registered app's ingest key (it ships inside client apps)
    lake = LocalStorage(tmp_path / "lake")
    _app, api_key = register_app(lake, APP)
    LakeSecret(lake, create=True).current()
    api = Api(lake)
    # WHEN it is sent as the ingest API takes it, or as a Bearer token, THEN it is refused
    assert api.get(DY, None, ("x-api-key", api_key)).json()["error"] == "missing_token"
    assert api.get(DY, f"Bearer {api_key}").json()["error"] == "invalid_token"
    assert api.get(DY, f"Bearer {api_key}", ("x-api-key", api_key)).status == 401


def test_rotating_the_read_secret_revokes_the_tokens_issued_before(tmp_path: Path) -> None:
    # GIVEN a token that reads
    lake = LocalStorage(tmp_path / "lake")
    register_app(lake, APP)
    LakeSecret(lake, create=True).current()
    api = Api(lake)
    old = f"Bearer {api.token()}"
    assert api.get(DY, old).status == 200
    # WHEN the secret is rotated (`minidrama apps rotate-read-secret`), on the running server
    LakeSecret(lake).rotate()
    # THEN the old token is invalid and a new one reads
    assert (api.get(DY, old).status, api.get(DY, old).json()["error"]) == (401, "invalid_token")
    assert api.get(DY, f"Bearer {api.token()}").status == 200


def test_a_lake_that_never_issued_a_token_refuses_every_token(tmp_path: Path) -> None:
    lake = LocalStorage(tmp_path / "lake")
    register_app(lake, APP)
    forged = issue_token(b"a guess of the secret, 32 bytes long", APP, NOW + timedelta(days=1)).token
    answer = Api(lake).get(DY, f"Bearer {forged}")
    assert (answer.status, answer.json()["error"]) == (401, "invalid_token")
    assert not lake.exists("config/read-token-secret")  # reading never creates the secret


def test_a_missing_day_is_named_with_the_command_that_computes_it(api: Api) -> None:
    message = api.get(f"{M}?from=2026-10-30&to=2026-11-02").json()["message"]
    assert "2026-10-30, 2026-10-31" in message and "2026-11-01" not in message
    assert f"minidrama compute --app {APP} --date 2026-10-30 --to 2026-10-31" in message


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-11-3&to=2026-11-09", "from='2026-11-3' is not a date like 2026-11-28"),
        ("from=2026-11-09&to=2026-11-03", "from=2026-11-09 is after to=2026-11-03"),
        ("from=2026-11-03", "give both from and to"),
        ("from=2025-10-05&to=2026-11-09", "is 401 days; at most 400"),
        (f"{RANGE}&format=xml", "format='xml': use json or csv"),
        (f"{RANGE}&to=2026-11-09", "to is given 2 times"),
    ],
)
def test_a_bad_parameter_is_named(api: Api, query: str, message: str) -> None:
    assert message in api.get(f"{M}?{query}").json()["message"]


def test_400_days_are_one_range(api: Api) -> None:
    # 400 days is the most a range takes: the answer is about the days never computed, not the length
    answer = api.get(f"{M}?from=2025-10-06&to=2026-11-09")
    assert (answer.status, answer.json()["error"]) == (404, "not_computed")


# --- the documents are the metrics engine's ----------------------------------------------------


@pytest.mark.parametrize(
    ("query", "first", "last", "segments"),
    [
        (RANGE, DEFAULT_FIRST, DEFAULT_LAST, None),
        ("from=2026-11-05&to=2026-11-05", date(2026, 11, 5), date(2026, 11, 5), None),
        ("", DEFAULT_FIRST, DEFAULT_LAST, None),
        (f"{RANGE}&segment=region:US&segment=os:ios", DEFAULT_FIRST, DEFAULT_LAST, ["os:ios", "region:US"]),
        ("from=2026-11-01&to=2026-11-10&segment=all&segment=", DAYS[0], DAYS[-1], ["all"]),
    ],
    ids=["a week", "one day", "the default range", "two segments", "every day, all"],
)
def test_the_range_document_is_the_engines(
    api: Api, app: AppConfig, query: str, first: date, last: date, segments: list[str] | None
) -> None:
    # WHEN a range is read
    answer = api.get(f"{M}?{query}")
    # THEN it is the document the metrics engine computes for it, in the engine's segment order
    expected = query_range(api.lake, app, first, last, segments)
    document = answer.json()
    assert without_generated_at(document) == without_generated_at(expected)
    assert list(document["segments"]) == list(expected["segments"])
    # AND its CSV is that document's CSV, asked by format=csv or by Accept
    csv = api.get(f"{M}?{query}&format=csv")
    assert (csv.headers["content-type"], csv.text) == ("text/csv; charset=utf-8", document_csv(expected))
    assert csv.headers["content-disposition"] == f'attachment; filename="{APP}-metrics-{first}-{last}.csv"'
    accepted = api.get(f"{M}?{query}", "token", ("Accept", "text/csv, */*;q=0.1"))
    assert accepted.text == csv.text
    # AND format=json wins over Accept
    assert api.get(f"{M}?{query}&format=json", "token", ("Accept", "text/csv")).json() == document


@pytest.mark.parametrize(
    ("query", "first", "last", "segment"),
    [
        (RANGE, DEFAULT_FIRST, DEFAULT_LAST, None),
        ("", DEFAULT_FIRST, DEFAULT_LAST, None),
        (f"{RANGE}&segment=os:ios", DEFAULT_FIRST, DEFAULT_LAST, "os:ios"),
        ("from=2026-11-01&to=2026-11-10&segment=region:CA", DAYS[0], DAYS[-1], "region:CA"),
    ],
    ids=["a week", "the default range", "one segment", "a segment some days lack"],
)
def test_the_daily_documents_are_the_stored_ones_in_order(
    api: Api, app: AppConfig, query: str, first: date, last: date, segment: str | None
) -> None:
    stored = daily_documents(api.lake, app, first, last)
    # WHEN the daily route is read, THEN it lists the stored documents of the range in date order
    body = api.get(f"{D}?{query}").json()
    assert (body["app_id"], body["from"], body["to"]) == (APP, first.isoformat(), last.isoformat())
    expected = [stored[day] for day in sorted(stored)]
    if segment is not None:  # each keeping only the segment, where it had events
        expected = [
            {**doc, "segments": {k: v for k, v in doc["segments"].items() if k == segment}}
            for doc in expected
        ]
    assert body["documents"] == expected
    assert [doc["date"] for doc in body["documents"]] == [day.isoformat() for day in sorted(stored)]
    # AND its CSV is the series of that segment, one row per day
    csv = api.get(f"{D}?{query}&format=csv")
    assert csv.text == series_csv(stored, segment or "all")
    assert csv.text.count("\r\n") == len(stored) + 1


def test_a_segment_some_days_lack_is_in_the_range_it_has_events_in(api: Api) -> None:
    # region:CA has no events on some days: the daily documents of those days have no entry for it
    documents = api.get(f"{D}?from=2026-11-01&to=2026-11-10&segment=region:CA").json()["documents"]
    assert any(doc["segments"] == {} for doc in documents)
    assert any("region:CA" in doc["segments"] for doc in documents)


def test_the_days_route_says_what_can_be_read(api: Api) -> None:
    # 11-10 is computed but has not ended in Los Angeles at NOW
    assert api.get(DY).json() == {
        "app_id": APP,
        "timezone": TIMEZONE,
        "currency": "USD",
        "today": "2026-11-10",
        "first_day": "2026-11-01",
        "last_day": "2026-11-09",
    }


def test_the_days_of_an_app_with_nothing_computed_are_null(api: Api) -> None:
    answer = api.get(f"/v1/apps/{OTHER}/metrics/days", f"Bearer {api.token(OTHER)}")
    assert answer.json() == {
        "app_id": OTHER,
        "timezone": "UTC",
        "currency": "USD",
        "today": "2026-11-11",
        "first_day": None,
        "last_day": None,
    }
    assert_documented(answer.status, answer.json(), answer.headers, path=DAYS_PATH, method="get")
    # AND its default range names yesterday as the day to compute
    default = api.get(f"/v1/apps/{OTHER}/metrics", f"Bearer {api.token(OTHER)}").json()
    assert (default["error"], "2026-11-10" in default["message"]) == ("not_computed", True)


def test_the_default_range_ends_on_the_last_day_ended_in_the_apps_time_zone(computed: LocalStorage) -> None:
    # GIVEN the same lake read at 06:59 UTC on 11-10 (22:59 on 11-09 in Los Angeles)
    api = Api(computed)
    api.reader.clock = lambda: datetime(2026, 11, 10, 6, 59, tzinfo=UTC)
    # WHEN the range is read without from and to, THEN it ends on 11-08 (in UTC it would be 11-09)
    document = api.get(M, f"Bearer {api.token()}").json()
    assert (document["from"], document["to"]) == ("2026-11-02", "2026-11-08")
    # AND with only a few days ended, the range starts on the first computed day
    api.reader.clock = lambda: datetime(2026, 11, 4, 12, tzinfo=UTC)
    document = api.get(M, f"Bearer {api.token()}").json()
    assert (document["from"], document["to"]) == ("2026-11-01", "2026-11-03")


def test_the_default_range_stops_at_a_day_never_computed(copied: LocalStorage) -> None:
    # GIVEN 11-05 taken out of the facts index (as if never computed)
    index_path = copied.root / "facts" / "_index" / f"app_id={APP}" / "index.json"
    index = json.loads(index_path.read_text())
    del index["days"]["2026-11-05"]
    index_path.write_text(json.dumps(index))
    # WHEN the range is read without from and to THEN it is the days after the gap, not a 404
    document = Api(copied).get(M).json()
    assert (document["from"], document["to"]) == ("2026-11-06", "2026-11-09")


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/csv", "text/csv"),
        ("text/csv;q=0.9, application/json", "application/json"),
        ("application/json, text/csv;q=0.1", "application/json"),
        ("text/csv;q=0", "application/json"),
        ("application/json;q=0.5, text/csv", "text/csv"),
        ("*/*", "application/json"),
    ],
)
def test_accept_chooses_csv_only_when_it_ranks_above_json(api: Api, accept: str, expected: str) -> None:
    answer = api.get(f"{M}?{RANGE}", "token", ("Accept", accept))
    assert answer.headers["content-type"].split(";")[0] == expected


def test_a_recomputed_day_is_never_served_from_the_cache(copied: LocalStorage, app: AppConfig) -> None:
    # GIVEN a range read twice: the second answer comes from the cache
    api = Api(copied)
    first = api.get(f"{M}?{RANGE}").json()
    assert api.get(f"{M}?{RANGE}").json()["generated_at"] == first["generated_at"]
    # WHEN a new user's launch on 11-05 arrives and the day is recomputed
    launch = event("late-1", "app_launch", "2026-11-05T20:00:00Z", "brand-new-user", entry_point="feed")
    ingest_events(copied, app, [launch], received_at=datetime(2026, 11, 12, tzinfo=UTC))
    compute_days(copied, app, [date(2026, 11, 5)], now=NOW)
    # THEN the same request answers the new document: one more active user in the range
    second = api.get(f"{M}?{RANGE}").json()
    active = [doc["segments"]["all"]["dashboard"]["active_users"] for doc in (first, second)]
    assert active[1] == active[0] + 1
    assert without_generated_at(second) == without_generated_at(
        query_range(copied, app, DEFAULT_FIRST, DEFAULT_LAST)
    )


def _damage_a_facts_file(lake: LocalStorage, day: date) -> None:
    path = sorted((lake.root / "facts").glob(f"*/app_id={APP}/dt={day.isoformat()}/*.parquet"))[0]
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))


def test_a_damaged_facts_file_is_a_500_naming_the_day(copied: LocalStorage) -> None:
    # GIVEN one facts file of 11-05 changed on disk, WHEN a range over it is read
    _damage_a_facts_file(copied, date(2026, 11, 5))
    answer = Api(copied).get(f"{M}?{RANGE}")
    # THEN it is a documented 500 naming the file, not a document computed from damaged facts
    body = answer.json()
    assert (answer.status, body["error"]) == (500, "damaged_facts")
    assert "dt=2026-11-05" in body["message"]
    assert_documented(answer.status, body, answer.headers, path=METRICS_PATH, method="get")


@pytest.mark.parametrize("path", [METRICS_PATH, DAILY_PATH, DAYS_PATH])
def test_an_unreadable_configuration_is_a_documented_500(copied: LocalStorage, path: str) -> None:
    # GIVEN a token that reads, then config/apps.json broken
    api = Api(copied)
    authorization = f"Bearer {api.token()}"
    copied.put_bytes(APPS_CONFIG_KEY, b'{"apps": {')
    # WHEN the route is read THEN it is a 500 in the contract's shape
    answer = api.get(path.replace("{app_id}", APP), authorization)
    assert (answer.status, answer.json()["error"]) == (500, "internal_error")
    assert_documented(answer.status, answer.json(), answer.headers, path=path, method="get")


@pytest.mark.parametrize(
    ("broken", "target", "path"),
    [("page", f"/v1/apps/{APP}/dashboard", DASHBOARD_PATH), ("asset", "/v1/dashboard/format.js", FILES_PATH)],
)
def test_a_bug_in_the_dashboard_is_a_documented_500(
    api: Api, monkeypatch: pytest.MonkeyPatch, broken: str, target: str, path: str
) -> None:
    def bug(*_args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(minidrama.dashboard, broken, bug)
    answer = api.get(target, None)
    assert (answer.status, answer.json()["error"]) == (500, "internal_error")
    assert_documented(answer.status, answer.json(), answer.headers, path=path, method="get")


# --- security headers, the page and its files --------------------------------------------------


@pytest.mark.parametrize(
    ("target", "credentials"),
    [
        (f"{M}?{RANGE}", "token"),
        (f"{M}?{RANGE}&format=csv", "token"),
        (f"{D}?{RANGE}", "token"),
        (DY, "token"),
        (f"{M}?{RANGE}", "none"),
        (f"{M}?{RANGE}", "another app's"),
        (f"{M}?from=nope", "token"),
        (f"{M}?from=2026-10-01&to=2026-10-02", "token"),
    ],
)
def test_read_answers_are_never_cached_sniffed_or_shared_across_origins(
    api: Api, target: str, credentials: str
) -> None:
    # WHEN a page on another origin asks (its browser sends Origin)
    answer = api.get(target, _credentials(api, credentials), ("Origin", "https://elsewhere.example"))
    # THEN the answer is private, of its declared type only, and not readable by that origin
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert not [name for name in answer.headers if name.startswith("access-control-")], answer.headers


def test_a_cors_preflight_is_not_granted(api: Api) -> None:
    answer = api.get(
        f"{M}?{RANGE}",
        None,
        ("Origin", "https://elsewhere.example"),
        ("Access-Control-Request-Method", "GET"),
        ("Access-Control-Request-Headers", "authorization"),
        method="OPTIONS",
    )
    assert answer.status == 405
    assert not [name for name in answer.headers if name.startswith("access-control-")], answer.headers


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.handlers: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.handlers += [name for name in named if name.startswith("on")]
        if tag == "script" and not named.get("src"):
            self.inline_scripts += 1
        for name in ("src", "href"):
            if named.get(name) and not str(named[name]).startswith(("data:", "#")):
                self.urls.append(str(named[name]))


def _page(api: Api) -> tuple[Answer, _Page]:
    answer = api.get(f"/v1/apps/{APP}/dashboard", None)
    parsed = _Page()
    parsed.feed(answer.text)
    return answer, parsed


def test_the_dashboard_runs_only_its_own_scripts(api: Api) -> None:
    answer, page = _page(api)
    # THEN its policy allows its own origin's scripts only, never eval or inline code
    policy = {
        directive.split()[0]: directive.split()[1:]
        for directive in answer.headers["content-security-policy"].split(";")
        if directive.strip()
    }
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'none'"] and policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "unsafe-eval" not in answer.headers["content-security-policy"]
    assert "unsafe-inline" not in answer.headers["content-security-policy"]
    # AND the page needs nothing the policy forbids: no inline script or handler, no other host
    assert (page.inline_scripts, page.handlers) == (0, [])
    assert page.urls and all(not re.match(r"^([a-z]+:)?//", url) for url in page.urls), page.urls
    assert answer.headers["content-type"] == "text/html; charset=utf-8"


def test_the_files_route_serves_every_file_the_page_names(api: Api) -> None:
    _answer, page = _page(api)
    for url in page.urls:
        # WHEN the browser resolves the page's URL (relative to /v1/apps/APP/dashboard)
        assert url.startswith("../../dashboard/"), url
        name, _, version = url.removeprefix("../../dashboard/").partition("?v=")
        answer = api.get(f"/v1/dashboard/{name}?v={version}", None)
        # THEN it is served with its type, cacheable for good since the URL names its content
        assert answer.status == 200, url
        assert answer.headers["content-type"].startswith(
            "text/css" if name.endswith(".css") else "text/javascript"
        )
        assert version == hashlib.sha256(answer.body).hexdigest()[:12]
        assert "immutable" in answer.headers["cache-control"]
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert {url.split("?")[0].rsplit("/", 1)[1] for url in page.urls} == set(minidrama.dashboard.ASSETS)


@pytest.mark.parametrize(
    "target",
    [
        "/v1/dashboard/index.html",
        "/v1/dashboard/__init__.py",
        "/v1/dashboard/packages.json",
        "/v1/dashboard/LICENSE-vega.txt",
        "/v1/dashboard/..%2Fapi.py",
        "/v1/dashboard/..%2F..%2Fapi.py",
        "/v1/dashboard/%2e%2e%2f__init__.py",
        "/v1/dashboard/..%5C__init__.py",
        "/v1/dashboard/vendor%2Fvega.min.js",
        "/v1/dashboard/static%2Findex.html",
        "/v1/dashboard/dashboard.js%00.py",
        "/v1/dashboard/DASHBOARD.JS",
        "/v1/dashboard/",
        "/v1/dashboard/../../api.py",
    ],
)
def test_the_files_route_serves_nothing_else(api: Api, target: str) -> None:
    answer = api.get(target, None)
    assert (answer.status, answer.json()["error"]) == (404, "not_found")
    assert b"import" not in answer.body and b"<html" not in answer.body


# --- the HTTP layer's answers on a read route, and the document's list of statuses ---------------

QUICK = Limits(
    max_connections=3, idle_timeout=1.0, request_timeout=1.0, write_timeout=5.0, linger_seconds=0.2
)


def _request(*fields: str, target: str = f"{M}?{RANGE}", method: str = "GET") -> bytes:
    return ("\r\n".join([f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *fields]) + "\r\n\r\n").encode()


# name: (bytes sent, status, error code); each is answered before any route runs, on any path
HTTP_LAYER: dict[str, tuple[bytes, int, str]] = {
    "Content-Length twice": (
        _request("Content-Length: 1", "Content-Length: 2") + b"x",
        400,
        "malformed_request",
    ),
    "no Host": (b"GET /v1/apps/app-1/metrics HTTP/1.1\r\n\r\n", 400, "malformed_request"),
    "announced over 1 MiB": (_request(f"Content-Length: {2 * MAX_BODY_BYTES}"), 413, "payload_too_large"),
    "64 KiB request line": (_request(target=f"{M}?segment=" + "a" * 65_536), 414, "uri_too_long"),
    "40 KiB of headers": (
        _request(*(f"X-Padding-{n}: {'p' * 100}" for n in range(400))),
        431,
        "headers_too_large",
    ),
    "gzip, chunked": (_request("Transfer-Encoding: gzip, chunked"), 501, "not_implemented"),
    "half a head": (f"GET {M} HTTP/1.1\r\nHost: x\r\n".encode(), 408, "request_timeout"),
}


@pytest.fixture(scope="module")
def quick(computed: LocalStorage) -> Iterator[tuple[str, int]]:
    with serve_in_background(computed, limits=QUICK) as url:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        yield host, int(port)


@pytest.mark.parametrize("name", list(HTTP_LAYER))
def test_the_http_layer_answers_a_read_route_as_documented(quick: tuple[str, int], name: str) -> None:
    sent, status, code = HTTP_LAYER[name]
    answer = raw_exchange(quick, sent)
    assert (answer.status, answer.body["error"]) == (status, code)
    assert_documented(answer.status, answer.body, answer.headers, path=METRICS_PATH, method="get")


def test_a_connection_over_the_limit_is_answered_503_on_a_read_route(quick: tuple[str, int]) -> None:
    held = [socket.create_connection(quick, timeout=30) for _ in range(QUICK.max_connections)]
    try:
        time.sleep(0.2)  # let the server accept them
        answer = raw_exchange(quick, _request())
    finally:
        for sock in held:
            sock.close()
    assert (answer.status, answer.body["error"]) == (503, "unavailable")
    assert_documented(answer.status, answer.body, answer.headers, path=METRICS_PATH, method="get")


def test_the_document_lists_exactly_the_read_answers_the_tests_show() -> None:
    shown_by_route: dict[str, set[tuple[int, str]]] = {}
    for _method, target, _credentials_name, status, code in STATUSES.values():
        shown_by_route.setdefault(_template(target), set()).add((status, code))
    for path in READ_PATHS:
        shown_by_route[path].add((500, "internal_error"))  # test_an_unreadable_..., test_a_bug_in_...
    shown_by_route[METRICS_PATH].add((500, "damaged_facts"))  # test_a_damaged_facts_file_is_a_500_...
    http_layer = {(status, code) for _sent, status, code in HTTP_LAYER.values()} | {(503, "unavailable")}
    gateway = gateway_answers()  # API Gateway's own answers, as template.yaml configures them
    gateway_statuses = {status for status, _code in gateway if status is not None} | GATEWAY_5XX_STATUSES
    for path in READ_PATHS:
        shown = shown_by_route[path] | http_layer
        assert documented_statuses(path, "get") == {status for status, _code in shown} | gateway_statuses, (
            path
        )
    every_code = {code for shown in shown_by_route.values() for _status, code in shown if code}
    every_code |= {code for _status, code in http_layer | gateway}
    assert every_code == documented_error_codes(METRICS_PATH)
