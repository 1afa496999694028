"""The read API over real HTTP: a real `minidrama serve` on a small computed lake, read tokens from
the real CLI, refusals, a log without tokens, a rotated secret on a running server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from minidrama.config import get_app
from minidrama.ingestion import ingest_events
from minidrama.lake import LocalStorage
from minidrama.metrics import compute_days, query_range
from minidrama.metrics.tabular import document_csv
from minidrama.simulator import simulate
from tests.contract import METRICS_PATH, assert_documented
from tests.e2e.serving import Served, cli, register, serving
from tests.metrics_support import without_generated_at

APP, OTHER = "e2e-read-app", "e2e-other-app"
DAYS = [date(2026, 11, 1) + timedelta(days=offset) for offset in range(3)]
RANGE = "from=2026-11-01&to=2026-11-03"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def get(served: Served, path: str, token: str | None, *headers: tuple[str, str]) -> Answer:
    fields = dict(headers) | ({"Authorization": f"Bearer {token}"} if token is not None else {})
    request = urllib.request.Request(served.url + path, headers=fields)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Answer(
                response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
            )
    except urllib.error.HTTPError as error:
        return Answer(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


def token_of(lake: Path, app_id: str, *options: str) -> dict[str, str]:
    """What `minidrama apps token` prints: one JSON line."""
    (line,) = cli("apps", "token", app_id, "--lake", str(lake), *options).splitlines()
    return json.loads(line)


def _tampered(token: str) -> str:
    """``token`` with one character of its signature changed."""
    return token[:-10] + ("B" if token[-10] == "A" else "A") + token[-9:]


def minidrama(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "minidrama", *args], capture_output=True, text=True, timeout=120
    )


@dataclass
class Reading:
    lake: Path
    served: Served
    log: Path
    token: str
    api_key: str


@pytest.fixture(scope="module")
def reading(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reading]:
    """Three computed days of APP (registered with the CLI), OTHER registered, the server running."""
    root = tmp_path_factory.mktemp("read-http")
    lake = root / "lake"
    api_key = register(lake, APP)
    register(lake, OTHER)
    storage = LocalStorage(lake)
    app = get_app(storage, APP)
    assert app is not None
    for _day, events in simulate(DAYS[0], len(DAYS), seed=5, new_users_per_day=5):
        ingest_events(storage, app, events, received_at=datetime(2026, 11, 5, tzinfo=UTC))
    compute_days(storage, app, DAYS)
    token = token_of(lake, APP)["token"]
    with serving(lake, log=root / "serve.log") as served:
        yield Reading(lake, served, root / "serve.log", token, api_key)


def test_a_token_from_the_cli_reads_the_range_as_json_and_csv(reading: Reading) -> None:
    # GIVEN a token printed by `minidrama apps token` (default 14 days)
    printed = token_of(reading.lake, APP)
    expires_at = datetime.fromisoformat(printed["expires_at"])
    assert printed["app_id"] == APP
    assert abs(expires_at - (datetime.now(UTC) + timedelta(days=14))) < timedelta(minutes=5)
    # WHEN the range is read over HTTP with it
    answer = get(reading.served, f"/v1/apps/{APP}/metrics?{RANGE}", printed["token"])
    # THEN it is the engine's document of the lake, as documented
    assert answer.status == 200, answer.body
    expected = query_range(
        LocalStorage(reading.lake), get_app(LocalStorage(reading.lake), APP), DAYS[0], DAYS[-1]
    )
    assert without_generated_at(answer.json()) == without_generated_at(expected)
    assert_documented(200, answer.json(), answer.headers, path=METRICS_PATH, method="get")
    # AND as CSV, by format=csv or by Accept
    csv = get(reading.served, f"/v1/apps/{APP}/metrics?{RANGE}&format=csv", printed["token"])
    assert (csv.status, csv.headers["content-type"]) == (200, "text/csv; charset=utf-8")
    assert csv.body.decode() == document_csv(expected)
    accepted = get(
        reading.served, f"/v1/apps/{APP}/metrics?{RANGE}", printed["token"], ("Accept", "text/csv")
    )
    assert accepted.body == csv.body


def test_the_daily_documents_and_days_read_over_http(reading: Reading) -> None:
    daily = get(reading.served, f"/v1/apps/{APP}/metrics/daily?{RANGE}", reading.token)
    assert [document["date"] for document in daily.json()["documents"]] == [day.isoformat() for day in DAYS]
    days = get(reading.served, f"/v1/apps/{APP}/metrics/days", reading.token).json()
    assert (days["first_day"], days["last_day"]) == ("2026-11-01", "2026-11-03")


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        ("none", (401, "missing_token")),
        ("tampered", (401, "invalid_token")),
        ("ingest key as Bearer", (401, "invalid_token")),
        ("another app's token", (403, "token_for_another_app")),
    ],
)
def test_reads_without_this_apps_token_are_refused(
    reading: Reading, credentials: str, expected: tuple[int, str]
) -> None:
    token = {
        "none": None,
        "tampered": _tampered(reading.token),
        "ingest key as Bearer": reading.api_key,
        "another app's token": token_of(reading.lake, OTHER)["token"],
    }[credentials]
    # WHEN the range is asked with these credentials (and the ingest key too, where it is sent)
    answer = get(reading.served, f"/v1/apps/{APP}/metrics?{RANGE}", token, ("x-api-key", reading.api_key))
    # THEN it is refused with a JSON reason, as documented
    assert (answer.status, answer.json()["error"]) == expected
    assert answer.json()["message"]
    assert_documented(answer.status, answer.json(), answer.headers, path=METRICS_PATH, method="get")


def test_the_server_log_holds_the_requests_but_no_token(reading: Reading) -> None:
    # GIVEN reads with tokens, answered 200, 401 and 404
    tampered = _tampered(reading.token)
    get(reading.served, f"/v1/apps/{APP}/metrics?{RANGE}", reading.token)
    get(reading.served, f"/v1/apps/{APP}/metrics?from=2026-10-01&to=2026-10-02", reading.token)
    get(reading.served, f"/v1/apps/{APP}/metrics/days", tampered)
    # WHEN the server's log is read (it logs a request once its answer is sent)
    last_line = f'"GET /v1/apps/{APP}/metrics/days" 401'
    deadline = time.monotonic() + 10
    while last_line not in reading.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = reading.log.read_text()
    # THEN it has a line per request, and no token, whole or its signature
    assert f'"GET /v1/apps/{APP}/metrics?{RANGE}" 200' in log and last_line in log
    for token in (reading.token, tampered):
        assert token not in log and token.rsplit(".", 1)[1] not in log


def test_rotating_the_read_secret_revokes_tokens_on_the_running_server(tmp_path: Path) -> None:
    # GIVEN a running server and a token that reads
    lake = tmp_path / "lake"
    register(lake, APP)
    old = token_of(lake, APP)["token"]
    with serving(lake) as served:
        assert get(served, f"/v1/apps/{APP}/metrics/days", old).status == 200
        # WHEN the read secret is rotated with the CLI
        rotated = minidrama("apps", "rotate-read-secret", "--lake", str(lake))
        assert rotated.returncode == 0 and "revoked" in rotated.stderr
        # THEN the old token is refused at once, and a new one reads
        answer = get(served, f"/v1/apps/{APP}/metrics/days", old)
        assert (answer.status, answer.json()["error"]) == (401, "invalid_token")
        assert get(served, f"/v1/apps/{APP}/metrics/days", token_of(lake, APP)["token"]).status == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ghost-app",), "no app 'ghost-app' is registered"),
        ((APP, "--days", "0"), "'0' is not a number of days from 1 to 366"),
        ((APP, "--days", "400"), "'400' is not a number of days from 1 to 366"),
        ((APP, "--days", "-3"), "is not a number of days"),
    ],
    ids=["unregistered app", "0 days", "400 days", "negative days"],
)
def test_the_cli_refuses_a_token_it_should_not_print(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    register(tmp_path / "lake", APP)
    done = minidrama("apps", "token", *args, "--lake", str(tmp_path / "lake"))
    assert (done.returncode, done.stdout) == (2, "")
    assert message in done.stderr


def test_the_cli_prints_a_token_for_the_days_asked_and_the_dashboard_link(tmp_path: Path) -> None:
    register(tmp_path / "lake", APP)
    done = minidrama("apps", "token", APP, "--days", "366", "--lake", str(tmp_path / "lake"))
    printed = json.loads(done.stdout)
    expires_at = datetime.fromisoformat(printed["expires_at"])
    assert abs(expires_at - (datetime.now(UTC) + timedelta(days=366))) < timedelta(minutes=5)
    assert f"/v1/apps/{APP}/dashboard#token={printed['token']}" in done.stderr
