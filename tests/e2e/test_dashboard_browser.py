"""The dashboard in a real browser (Playwright driving Debian's Chromium) against `minidrama serve`.

The lake is simulated here (a :30 time zone, its own seed), every day computed, a token issued
by the real CLI. Each check holds what the page shows against the read API's own answer for the
same range and segment, formatted by the report's formatters (``minidrama.report.format``): the
page must show the document's numbers, and every CSV it downloads must be exactly what it shows.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api as playwright_api

from minidrama.config import register_app
from minidrama.ingestion import ingest_events
from minidrama.lake import LocalStorage
from minidrama.metrics import compute_days
from minidrama.report.format import format_value
from minidrama.simulator import simulate
from tests.e2e.serving import Served, cli, serving

CHROMIUM = "/usr/bin/chromium"
APP = "browser-drama"
TIMEZONE = "Asia/Kolkata"
FIRST_DAY = date(2026, 10, 20)
DAYS = 24
LAST_DAY = FIRST_DAY + timedelta(days=DAYS - 1)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "dashboard-screenshots"


# --- the lake, the server, the browser ----------------------------------------------------------


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dashboard") / "lake"
    storage = LocalStorage(root)
    app, _key = register_app(storage, APP, timezone=TIMEZONE, currency="USD")
    for _day, events in simulate(FIRST_DAY, DAYS, seed=20261201, timezone=TIMEZONE, new_users_per_day=45):
        for start in range(0, len(events), 1000):
            ingest_events(storage, app, events[start : start + 1000], received_at=datetime.now(UTC))
    compute_days(storage, app, [FIRST_DAY + timedelta(days=n) for n in range(DAYS)])
    return root


@pytest.fixture(scope="module")
def served(lake: Path) -> Iterator[Served]:
    with serving(lake) as running:
        yield running


@pytest.fixture(scope="module")
def token(lake: Path) -> str:
    return str(json.loads(cli("apps", "token", APP, "--lake", str(lake), "--days", "1"))["token"])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


class Dashboard:
    """One open page, what it logged, and the read API it reads (with the same token)."""

    def __init__(self, browser: Any, served: Served, token: str, width: int, query: str = "") -> None:
        self.served, self.token = served, token
        self.context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.downloads = 0
        self.page.on(
            "console", lambda m: self.problems.append(m.text) if m.type in ("error", "warning") else None
        )
        self.page.on("pageerror", lambda error: self.problems.append(str(error)))
        self.page.on("requestfailed", lambda request: self.problems.append(f"failed: {request.url}"))
        self.requested_hosts: set[str] = set()
        self.page.on("request", lambda request: self.requested_hosts.add(request.url.split("/")[2]))
        self.page.goto(f"{served.url}/v1/apps/{APP}/dashboard{query}#token={token}")
        self.wait_render(0)

    def renders(self) -> int:
        return int(self.page.evaluate("Number(document.documentElement.dataset.renders || 0)"))

    def wait_render(self, after: int, timeout: float = 60.0) -> None:
        """Until the page has drawn more than ``after`` times and loads nothing.

        Polled from here: Playwright's ``wait_for_function`` evaluates a string in the page, which
        the page's Content-Security-Policy forbids (no ``unsafe-eval``), as it should.
        """
        deadline = time.monotonic() + timeout
        probe = (
            f"Number(document.documentElement.dataset.renders || 0) > {after}"
            " && !document.documentElement.dataset.loading"
        )
        while not self.page.evaluate(probe):
            assert time.monotonic() < deadline, f"the page did not draw (status: {self.status()!r})"
            time.sleep(0.01)

    def status(self) -> str:
        return str(self.page.locator("#status").text_content())

    def state(self) -> dict[str, Any]:
        return dict(self.page.evaluate("({...window.minidramaDashboard.state, document: null})"))

    def api(self, path: str, **query: str) -> Any:
        request = urllib.request.Request(
            f"{self.served.url}/v1/apps/{APP}/{path}?{'&'.join(f'{k}={v}' for k, v in query.items())}",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())

    def document(self) -> dict[str, Any]:
        state = self.state()
        return dict(self.api("metrics", **{"from": state["from"], "to": state["to"]}))

    def download(self, name: str) -> list[list[str]]:
        """The CSV the page downloads for ``name``: a real download for the first few of a page,
        then the text the page would save (Chromium lets one page download ten files)."""
        text = str(self.page.evaluate(f"window.minidramaDashboard.csv({name!r})"))
        if self.downloads < 6:
            with self.page.expect_download() as pending:
                self.page.locator(f'button[data-download="{name}"]').first.click()
            assert Path(pending.value.path()).read_bytes().decode("utf-8") == text
            self.downloads += 1
        assert text.endswith("\r\n")
        return list(csv.reader(io.StringIO(text)))

    def close(self) -> None:
        self.context.close()


def _value(values: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        values = values[part]
    return values


def _shown(raw: str, kind: str) -> str:
    """What the page must show for a CSV cell of that kind (the report's formatters)."""
    if kind == "text":
        return raw or "—"
    return format_value(None if raw == "" else float(raw), kind, "USD")


# --- what the page shows is the document --------------------------------------------------------


def assert_cards_match(dashboard: Dashboard, document: dict[str, Any]) -> int:
    """Every card's number equals the document's value of its path, formatted as the report does."""
    segment = document["segments"][dashboard.state()["segment"]]
    cards = dashboard.page.eval_on_selector_all(
        ".card .value", "nodes => nodes.map(n => [n.dataset.metric, n.dataset.kind, n.textContent])"
    )
    visible = [card for card in cards if card[0]]
    for path, kind, text in visible:
        assert text == format_value(_value(segment, path), kind, "USD"), path
    return len(visible)


def assert_tables_are_their_downloads(dashboard: Dashboard) -> dict[str, list[list[str]]]:
    """Each visible table's CSV download has its columns and rows, the cells being what is shown."""
    names = dashboard.page.eval_on_selector_all(
        "table[data-model]", "nodes => nodes.filter(n => n.offsetParent !== null).map(n => n.dataset.model)"
    )
    downloads = {}
    for name in names:
        shown = dashboard.page.eval_on_selector(
            f'table[data-model="{name}"]',
            """table => ({
              head: [...table.tHead.rows[0].cells].map(c => c.textContent),
              rows: [...table.tBodies[0].rows].filter(r => !r.querySelector('.empty')).map(r =>
                [...r.cells].map(c => [c.textContent, c.dataset.kind])),
            })""",
        )
        rows = dashboard.download(name)
        assert rows[0] == shown["head"], name
        assert len(rows) - 1 == len(shown["rows"]), name
        for cells, shown_cells in zip(rows[1:], shown["rows"], strict=True):
            assert [_shown(raw, kind) for raw, (_text, kind) in zip(cells, shown_cells, strict=True)] == [
                text for text, _kind in shown_cells
            ], name
        downloads[name] = rows
    return downloads


def assert_tables_hold_the_document(
    downloads: dict[str, list[list[str]]], document: dict[str, Any], state: dict[str, Any]
) -> None:
    """The downloaded tables (the shown numbers) hold the document's values of the chosen views."""
    segment = document["segments"][state["segment"]]
    number = lambda raw: None if raw == "" else float(raw)  # noqa: E731
    if "funnel" in downloads:
        stages = segment["funnel"][state["orderType"]]
        assert [number(row[1]) for row in downloads["funnel"][1:]] == [stage["pv"] for stage in stages]
        assert [number(row[2]) for row in downloads["funnel"][1:]] == [
            s["rate_from_previous"] for s in stages
        ]
    if "retention" in downloads:
        table = segment["retention"][state["retentionUserType"]]
        field = state["retentionShow"]
        cohorts = downloads["retention"][1:-1]
        assert [row[0] for row in cohorts] == [row["cohort_date"] for row in table["cohorts"]]
        for row, expected in zip(cohorts, table["cohorts"], strict=True):
            assert number(row[1]) == expected["cohort_size"]
            for column, n in zip(row[2:], ("d1", "d7", "d14", "d30"), strict=True):
                assert number(column) == (None if expected[n] is None else expected[n][field])
        totals = downloads["retention"][-1]
        assert [number(cell) for cell in totals[2:]] == [table[n][field] for n in ("d1", "d7", "d14", "d30")]
    if "entry_points" in downloads:
        rows = {row[0]: [number(cell) for cell in row[1:]] for row in downloads["entry_points"][1:]}
        assert rows == {
            name: [
                point["active_users"],
                point["new_users"],
                point["launch_sessions"],
                point["average_duration_per_session_ms"],
            ]
            for name, point in segment["entry_points"].items()
        }
    for block, user_type in (("profile", state["profileUserType"]), ("device", state["deviceUserType"])):
        for attribute, counts in segment[block][user_type].items():
            rows = downloads[f"{block}-{attribute}"][1:]
            assert {row[0]: number(row[1]) for row in rows} == counts
    if "top_products" in downloads:
        products = segment["iap_orders"][state["payerType"]]["top_redeemed_products"]
        assert [[row[0], number(row[1])] for row in downloads["top_products"][1:]] == [
            [product["product_id"], product["orders"]] for product in products
        ]
    if "ltv" in downloads:
        ltv = segment["iap_users"]["ltv"]
        assert [[number(cell) for cell in row[1:]] for row in downloads["ltv"][1:]] == [
            [ltv[key]["cohort_size"], ltv[key]["revenue"], ltv[key]["value"]]
            for key in ("range", "d0", "d7", "d30")
        ]


def assert_page_is_the_document(dashboard: Dashboard) -> None:
    document = dashboard.document()
    assert assert_cards_match(dashboard, document) >= 20
    downloads = assert_tables_are_their_downloads(dashboard)
    assert_tables_hold_the_document(downloads, document, dashboard.state())


# --- the tests -----------------------------------------------------------------------------------


def test_every_module_shows_the_read_apis_numbers_and_downloads_what_it_shows(
    browser: Any, served: Served, token: str
) -> None:
    # GIVEN the dashboard opened on a range that crosses a month end
    dashboard = Dashboard(browser, served, token, 1280, f"?from={date(2026, 10, 27)}&to={LAST_DAY}")
    try:
        # THEN every module is there, with the range asked for
        for module in ("dashboard", "iap", "operations", "performance"):
            assert dashboard.page.locator(f"#module-{module}").is_visible()
        assert dashboard.state()["from"] == "2026-10-27"
        # AND every number and every table is the document's
        assert_page_is_the_document(dashboard)
        # WHEN the orders view, each payer type, the redeem funnel, the other user types are chosen
        dashboard.page.click('[data-iap-view="orders"]')
        for choice in (
            ("#payer-type", "new_payers"),
            ("#payer-type", "returning_payers"),
            ("#order-type", "redeem"),
            ("#retention-user-type", "active"),
            ("#retention-show", "retained"),
            ("#profile-user-type", "new"),
            ("#device-user-type", "new"),
        ):
            before = dashboard.renders()
            dashboard.page.select_option(*choice)
            dashboard.wait_render(before)
            # THEN the page still shows exactly the document, in that view
            assert_page_is_the_document(dashboard)
        assert dashboard.page.evaluate("location.search") == f"?from=2026-10-27&to={LAST_DAY}"
        assert dashboard.problems == []
        assert dashboard.requested_hosts == {served.url.removeprefix("http://")}
    finally:
        dashboard.close()


def test_the_range_and_segment_filters_change_what_is_shown(browser: Any, served: Served, token: str) -> None:
    # GIVEN the dashboard on its default range: the last 7 computed days
    dashboard = Dashboard(browser, served, token, 1280)
    try:
        state = dashboard.state()
        assert (state["from"], state["to"]) == (str(LAST_DAY - timedelta(days=6)), str(LAST_DAY))
        assert_cards_match(dashboard, dashboard.document())
        # WHEN each preset is chosen THEN the range is the preset's and the numbers its document's
        for preset, first, last in (
            ("14", LAST_DAY - timedelta(days=13), LAST_DAY),
            ("30", FIRST_DAY, LAST_DAY),  # 30 days back reaches before the first day: clipped to it
            ("latest", LAST_DAY, LAST_DAY),
            ("this-month", date(2026, 11, 1), LAST_DAY),
            ("last-month", FIRST_DAY, date(2026, 10, 31)),  # October, from its first computed day
        ):
            before = dashboard.renders()
            dashboard.page.select_option("#preset", preset)
            dashboard.wait_render(before)
            state = dashboard.state()
            assert (state["from"], state["to"]) == (str(first), str(last)), preset
            assert_cards_match(dashboard, dashboard.document())
        # WHEN a custom range is applied
        dashboard.page.select_option("#preset", "custom")
        dashboard.page.fill("#from", "2026-10-25")
        dashboard.page.fill("#to", "2026-10-27")
        before = dashboard.renders()
        dashboard.page.click("#apply-custom")
        dashboard.wait_render(before)
        assert (dashboard.state()["from"], dashboard.state()["to"]) == ("2026-10-25", "2026-10-27")
        # AND an OS, then a region
        document = dashboard.document()
        os_segment = next(name for name in document["segments"] if name.startswith("os:"))
        region_segment = sorted(name for name in document["segments"] if name.startswith("region:"))[-1]
        for select, segment in (("#os", os_segment), ("#region", region_segment)):
            before = dashboard.renders()
            dashboard.page.select_option(select, segment)
            dashboard.wait_render(before)
            # THEN the segment is that one, every number its own, and the URL keeps it
            assert dashboard.state()["segment"] == segment
            assert_page_is_the_document(dashboard)
            assert f"segment={segment.replace(':', '%3A')}" in dashboard.page.evaluate("location.search")
        # AND choosing a region set the OS filter back to all (segments are one dimension)
        assert dashboard.page.input_value("#os") == ""
        assert dashboard.problems == []
    finally:
        dashboard.close()


def test_clicking_a_metric_draws_its_daily_line_with_one_point_per_day(
    browser: Any, served: Served, token: str
) -> None:
    first = LAST_DAY - timedelta(days=9)
    dashboard = Dashboard(browser, served, token, 1280, f"?from={first}&to={LAST_DAY}&segment=os:ios")
    try:
        daily = dashboard.api(
            "metrics/daily", **{"from": str(first), "to": str(LAST_DAY), "segment": "os:ios"}
        )
        for path, kind in (
            ("dashboard.active_users", "count"),
            ("iap_users.paying_user_rate", "rate"),
            ("performance.average_launch_ms", "launch"),
        ):
            # WHEN a metric's card is clicked
            dashboard.page.click(f'.card[data-metric="{path}"]')
            chart = dashboard.page.wait_for_selector(f'.chart-panel .chart[data-metric="{path}"]')
            # THEN its chart has one point per day of the range, drawn by Vega
            assert chart.get_attribute("data-points") == "10"
            dashboard.page.wait_for_selector(".chart-panel .chart svg, .chart-panel .chart canvas")
            # AND its CSV is the daily documents' values, one row per day
            rows = dashboard.download("chart")
            assert rows[0][0] == "Date" and len(rows) == 11
            expected = [
                _value(document["segments"]["os:ios"], path) if "os:ios" in document["segments"] else None
                for document in daily["documents"]
            ]
            assert [None if row[1] == "" else float(row[1]) for row in rows[1:]] == expected
            shown = dashboard.page.eval_on_selector_all(
                ".chart-panel .chart-data td.num", "cells => cells.map(c => c.textContent)"
            )
            assert shown == [format_value(value, kind, "USD") for value in expected]
        # WHEN the GMV is shown as a pie by region THEN it has one slice per region of the range
        dashboard.page.click('[data-iap-view="orders"]')
        dashboard.page.click('[data-gmv-view="region"]')
        regions = [name for name in dashboard.document()["segments"] if name.startswith("region:")]
        pie = dashboard.page.wait_for_selector('[data-block="gmv"] .chart[data-points]')
        assert pie.get_attribute("data-points") == str(len(regions))
        assert len(dashboard.download("gmv")) == len(regions) + 1
        assert dashboard.problems == []
    finally:
        dashboard.close()


@pytest.mark.parametrize("width", [390, 1280])
def test_the_page_fits_phone_and_desktop_widths(browser: Any, served: Served, token: str, width: int) -> None:
    dashboard = Dashboard(browser, served, token, width)
    try:
        dashboard.page.click('.card[data-metric="dashboard.active_users"]')
        dashboard.page.wait_for_selector(".chart-panel .chart svg")
        # THEN nothing is wider than the screen: wide tables scroll inside their own box
        assert dashboard.page.evaluate("document.documentElement.scrollWidth") <= width
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        dashboard.page.screenshot(path=str(SCREENSHOTS / f"dashboard-{width}.png"), full_page=True)
        assert dashboard.problems == []
    finally:
        dashboard.close()


def test_without_a_token_or_with_a_bad_one_the_page_says_what_to_do(
    browser: Any, served: Served, token: str
) -> None:
    page = browser.new_page()
    try:
        page.goto(f"{served.url}/v1/apps/{APP}/dashboard")
        assert "needs a read token" in page.locator("#status").text_content()
        page.goto(f"{served.url}/v1/apps/{APP}/dashboard#token={token[:-4]}AAAA")
        page.wait_for_selector("#status.error")
        assert "not valid" in page.locator("#status").text_content()
        page.goto(f"{served.url}/v1/apps/other-app/dashboard#token={token}")
        page.wait_for_selector("#status.error")
        assert "not for app 'other-app'" in page.locator("#status").text_content()
    finally:
        page.close()


def test_changing_the_range_or_a_filter_redraws_quickly(browser: Any, served: Served, token: str) -> None:
    """Click to the last number drawn, median of 5 (printed: speed targets live in bench/, not here)."""
    dashboard = Dashboard(browser, served, token, 1280)
    try:
        # The presets are fetched in the background once the first range shows.
        dashboard.page.wait_for_timeout(3000)
        timings: dict[str, list[float]] = {"preset": [], "filter": []}
        for preset, segment in (
            ("14", "os:ios"),
            ("30", "os:android"),
            ("latest", ""),
            ("7", "os:ios"),
            ("14", ""),
        ):
            for kind, select, value in (("preset", "#preset", preset), ("filter", "#os", segment)):
                before = dashboard.renders()
                started = dashboard.page.evaluate(
                    f"""() => {{ const t = performance.now(); const s = document.querySelector('{select}');
                    s.value = '{value}'; s.dispatchEvent(new Event('change')); return t; }}"""
                )
                dashboard.wait_render(before)
                timings[kind].append(
                    dashboard.page.evaluate("window.minidramaDashboard.lastRenderAt") - started
                )
        medians = {kind: statistics.median(values) for kind, values in timings.items()}
        preset, chosen = medians["preset"], medians["filter"]
        print(f"\nclick to last number: median preset {preset:.0f} ms, filter {chosen:.0f} ms")
        assert all(value > 0 for values in timings.values() for value in values)
        assert dashboard.problems == []
    finally:
        dashboard.close()


def test_the_dashboard_url_the_cli_prints_opens_the_page(lake: Path, served: Served) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "minidrama", "apps", "token", APP, "--lake", str(lake), "--url", served.url],
        capture_output=True,
        text=True,
        check=True,
    )
    url = done.stderr.split("dashboard: ", 1)[1].strip()
    assert url.startswith(f"{served.url}/v1/apps/{APP}/dashboard#token=mdr1.")
    with urllib.request.urlopen(url.split("#", 1)[0], timeout=30) as answer:
        assert answer.status == 200 and b"Mini Drama Analytics" in answer.read()
