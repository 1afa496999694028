"""The report in a real browser (headless Chromium): every chart image loads, nothing overflows.

Two ways in: the chromium CLI (``--dump-dom`` with a probe script) for the page as
``minidrama report`` stores it, and Playwright for the page and the email of the 35-day demo
at phone (360, 390), email (700) and desktop (1280) widths."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import subprocess
from collections.abc import Iterator
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from minidrama.config import app_or_default, load_apps
from minidrama.demo import DEMO_APP_ID
from minidrama.lake import LocalStorage, report_key
from minidrama.report import RenderedReport, build_report, load_documents, report_command, window_days
from minidrama.report.health import read_data_health
from minidrama.report.period import ReportPeriod
from minidrama.report.publish import load_period_documents
from minidrama.report.render import build_period_report
from tests.e2e.conftest import DemoRun
from tests.report_fixtures import checked_cells, metrics_document, parse, write_history

CHROMIUM = "/usr/bin/chromium"
DAY = date(2026, 11, 28)

# Written into a test copy of the page: after load, count the images that decoded (naturalWidth > 0).
PROBE = """<script>
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const loaded = images.filter((image) => image.complete && image.naturalWidth > 0);
  const probe = document.createElement('div');
  probe.id = 'probe';
  probe.setAttribute('data-images', images.length);
  probe.setAttribute('data-loaded', loaded.length);
  const broken = images.filter((image) => !loaded.includes(image));
  probe.setAttribute('data-broken', broken.map((image) => image.alt).join('|'));
  probe.setAttribute('data-overflow', document.documentElement.scrollWidth > window.innerWidth);
  document.body.appendChild(probe);
});
</script>"""


class _Probe(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, str] | None = None
        self.charts = 0

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if attributes.get("id") == "probe":
            self.found = attributes
        if tag == "img" and "data-chart" in attributes:
            self.charts += 1


def dump_dom(page: Path, profile: Path, width: int) -> str:
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={width},900",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


@pytest.fixture(scope="module")
def report_page(tmp_path_factory) -> Path:
    """A report made by `minidrama report` from 35 days of metrics (one missing), with the probe added."""
    root = tmp_path_factory.mktemp("report")
    lake = LocalStorage(root / "lake")
    write_history(lake, "dramaapp", DAY, 35, missing={date(2026, 11, 21)})
    assert report_command(lake, app_or_default(lake, "dramaapp"), DAY, None) == 0
    html = lake.get_bytes(report_key("dramaapp", DAY, "report.html")).decode()
    page = root / "report-probe.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"))
    return page


@pytest.mark.parametrize("width", [1100, 500], ids=["desktop", "phone"])
def test_every_chart_of_the_report_loads_in_chromium(report_page, tmp_path, width):
    # WHEN Chromium loads the report at a desktop and at a phone width
    parser = _Probe()
    parser.feed(dump_dom(report_page, tmp_path / "chromium-profile", width))
    # THEN every chart image decoded, and the page fits the window's width
    assert parser.found is not None, "the probe did not run: the page did not finish loading"
    assert parser.charts == 7
    assert parser.found["data-images"] == "7"
    assert parser.found["data-loaded"] == "7", parser.found["data-broken"]
    assert parser.found["data-overflow"] == "false"


# --- the demo's report at phone, email and desktop widths (Playwright) ----------------------------

WIDTHS = [360, 390, 700, 1280]
EMAIL_HTML_BUDGET = 90 * 1024

# Everything a reader would call overflow: any element past the viewport's edges, any KPI card
# whose content is wider than the card, and each chart's displayed scale (its text is 10 px at 1).
LAYOUT_PROBE = """() => {
  const width = document.documentElement.clientWidth;
  const name = (e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
    + (typeof e.className === 'string' && e.className.trim()
      ? '.' + e.className.trim().split(/\\s+/).join('.') : '');
  const where = (box) => `${Math.round(box.left)}..${Math.round(box.right)}`;
  const wide = [];
  for (const element of document.body.querySelectorAll('*')) {
    const box = element.getBoundingClientRect();
    if (!box.width && !box.height) continue;
    // a table wider than its .scroll box scrolls inside it: the box is held to the screen, not the table
    if (element.parentElement.closest('.scroll')) continue;
    if (box.left < -0.5 || box.right > width + 0.5) wide.push(`${name(element)} ${where(box)}`);
  }
  const scrolling = [...document.querySelectorAll('.scroll')]
    .filter((box) => box.scrollWidth > box.clientWidth)
    .map((box) => `${name(box.firstElementChild)} ${box.scrollWidth} > ${box.clientWidth}`);
  const cards = [];
  for (const card of document.querySelectorAll('td.kpi')) {
    const outer = card.getBoundingClientRect();
    if (card.scrollWidth > card.clientWidth) cards.push(`${card.dataset.kpi}: scrolls`);
    for (const inner of card.querySelectorAll('*')) {
      const box = inner.getBoundingClientRect();
      if (box.left < outer.left - 0.5 || box.right > outer.right + 0.5) {
        cards.push(`${card.dataset.kpi}: ${name(inner)} ${where(box)} in ${where(outer)}`);
      }
    }
  }
  const charts = [...document.querySelectorAll('img.chart')].map((image) => ({
    chart: image.dataset.chart,
    loaded: image.complete && image.naturalWidth > 0,
    scale: image.getBoundingClientRect().width / Number(image.getAttribute('width')),
  }));
  return {width, scrollWidth: document.documentElement.scrollWidth, wide: wide.slice(0, 12), scrolling,
          cards, charts, kpis: document.querySelectorAll('td.kpi').length};
}"""


def _viewable_email(report: RenderedReport) -> str:
    """The email's HTML part with its cid: images as data URIs, as a mail client shows it."""
    html = report.email_html
    for content_id, png in report.email_images.items():
        html = html.replace(f"cid:{content_id}", "data:image/png;base64," + base64.b64encode(png).decode())
    return html


def _html_part(eml: bytes) -> str:
    message = email.message_from_bytes(eml, policy=email.policy.default)
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


@pytest.fixture(scope="module")
def demo(demo_run: DemoRun, tmp_path_factory) -> dict[str, Any]:
    """GIVEN the 35-day demo (its lake, and the email it wrote), and its last day's report rendered
    again with the data health section."""
    assert demo_run.completed.returncode == 0, demo_run.completed.stderr
    out = tmp_path_factory.mktemp("demo-pages")
    lake = LocalStorage(demo_run.lake)
    app = load_apps(lake)[DEMO_APP_ID]
    [report_dir] = (demo_run.lake / "reports" / f"app_id={DEMO_APP_ID}").glob("dt=*")
    day = date.fromisoformat(report_dir.name.removeprefix("dt="))
    health = read_data_health(lake, app.app_id, day, timezone=app.timezone)
    report = build_report(app.app_id, day, load_documents(lake, app.app_id, day), health=health)
    pages = {"page": out / "page.html", "email": out / "email.html"}
    pages["page"].write_text(report.html)
    pages["email"].write_text(_viewable_email(report))
    return {"pages": pages, "eml": (report_dir / "report.eml").read_bytes(), "report": report}


@pytest.fixture(scope="module")
def period_reports(demo_run: DemoRun, tmp_path_factory) -> dict[str, Any]:
    """GIVEN the weekly report of the demo's last complete week and the monthly report of its last
    complete month, rendered from its lake as the report function does (data health included)."""
    assert demo_run.completed.returncode == 0, demo_run.completed.stderr
    lake = LocalStorage(demo_run.lake)
    app = load_apps(lake)[DEMO_APP_ID]
    metrics = demo_run.lake / "metrics" / f"app_id={DEMO_APP_ID}"
    week = max(path.name.removeprefix("week=") for path in metrics.glob("week=*"))
    month = max(path.name.removeprefix("month=") for path in metrics.glob("month=*"))
    out = tmp_path_factory.mktemp("period-pages")
    reports: dict[str, Any] = {}
    for period in (ReportPeriod.parse_week(week), ReportPeriod.parse_month(month)):
        documents = load_period_documents(lake, app.app_id, period)
        health = read_data_health(lake, app.app_id, period.last, timezone=app.timezone, first=period.first)
        report = build_period_report(app.app_id, period, documents, health=health)
        page, mail = out / f"{period.kind}-page.html", out / f"{period.kind}-email.html"
        page.write_text(report.html)
        mail.write_text(_viewable_email(report))
        reports[period.kind] = {"report": report, "documents": documents, "page": page, "email": mail}
    return reports


@pytest.fixture(scope="module")
def big_numbers(tmp_path_factory) -> dict[str, Path]:
    """A report of an app a thousand times the demo's size: 8- and 9-digit counts, GMV in millions."""
    day = date(2026, 11, 28)
    documents = {d: metrics_document("dramaapp", d, scale=3_000_000) for d in window_days(day)}
    report = build_report("dramaapp", day, documents)
    root = tmp_path_factory.mktemp("big")
    pages = {"page": root / "page.html", "email": root / "email.html"}
    pages["page"].write_text(report.html)
    pages["email"].write_text(_viewable_email(report))
    return pages


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def layout(browser: Any, page_file: Path, width: int) -> dict[str, Any]:
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.goto(page_file.as_uri(), wait_until="load")
        return dict(page.evaluate(LAYOUT_PROBE))
    finally:
        page.close()


@pytest.mark.slow
def test_the_demo_email_html_part_is_at_most_90_kb(demo):
    # THEN the HTML part of the email the demo wrote, and of the one with data health, fit the budget
    as_written = _html_part(demo["eml"])
    with_health = demo["report"].email_html
    assert 'id="data-health"' in with_health
    sizes = {"demo's report.eml": len(as_written.encode()), "with data health": len(with_health.encode())}
    assert max(sizes.values()) <= EMAIL_HTML_BUDGET, json.dumps(sizes)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["page", "email"])
@pytest.mark.parametrize("width", WIDTHS)
def test_nothing_is_wider_than_the_screen_and_charts_keep_their_text_size(browser, demo, kind, width):
    # WHEN the demo's report is shown at a phone, the email's and a desktop width
    found = layout(browser, demo["pages"][kind], width)
    # THEN no element reaches past the viewport, no table needs to scroll in its box, and the
    # page does not scroll sideways
    assert found["wide"] == [], found["wide"]
    assert found["scrolling"] == [], found["scrolling"]
    assert found["scrollWidth"] <= found["width"]
    # AND every KPI card holds its text
    assert found["kpis"] == 8 and found["cards"] == [], found["cards"]
    # AND every chart loaded, shown at 90% of its size or more: its 10 px text (the funnel's too)
    # never reads smaller than 9 px
    assert len(found["charts"]) == 7 and all(chart["loaded"] for chart in found["charts"])
    small = [chart for chart in found["charts"] if chart["scale"] < 0.9]
    assert small == [], small


@pytest.mark.parametrize("kind", ["page", "email"])
@pytest.mark.parametrize("width", [360, 700])
def test_kpi_cards_hold_big_numbers(browser, big_numbers, kind, width):
    # GIVEN 9-digit user counts and a GMV of millions WHEN shown at a phone's and the email's width
    found = layout(browser, big_numbers[kind], width)
    # THEN every number stays inside its card, and nothing is wider than the screen (a table of
    # such numbers may scroll in its own box on a phone, never at the email's width)
    assert found["cards"] == [] and found["wide"] == [], (found["cards"], found["wide"])
    assert found["scrollWidth"] <= found["width"]
    if width >= 700:
        assert found["scrolling"] == [], found["scrolling"]


# --- the weekly and monthly reports of the demo ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["weekly", "monthly"])
def test_every_number_of_a_period_report_is_its_range_documents(period_reports, kind):
    # GIVEN a weekly / monthly report and the documents it read
    entry = period_reports[kind]
    report, documents = entry["report"], entry["documents"]
    by_label = {report.period.label: documents.document, report.period.previous().label: documents.previous}
    # THEN every number is the period's range document's, or (its comparison column) the
    # previous period's: distinct users of the period, never a sum of days
    assert checked_cells(report.html, by_label.__getitem__) > 200
    cells = parse(report.html).cells
    shown = {cell["data-metric"] for cell in cells if cell["data-date"] == report.period.label}
    # AND it shows the period's cohort rows and totals, and its LTV over the period
    assert {"retention.new.cohorts.0.d1.rate", "retention.new.d1.rate", "iap_users.ltv.range.value"} <= shown
    # AND the email's HTML part keeps to the budget of the daily one
    assert len(report.email_html.encode()) <= EMAIL_HTML_BUDGET
    # AND the dates say the period, the comparison the period before
    assert report.view.baselines[0].vs == f"vs {report.period.noun} before"
    assert report.period.heading in report.html
    assert report.subject.startswith(
        f"{DEMO_APP_ID} {kind} report {report.period.label if kind == 'weekly' else report.period.heading}"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "medium", "width"),
    # the daily report's own test runs every width for both media; a period report differs in its
    # tables (cohort rows, LTV, one comparison column): each medium at a phone's and its own width
    [
        ("weekly", "page", 360),
        ("weekly", "page", 1280),
        ("weekly", "email", 390),
        ("weekly", "email", 700),
        ("monthly", "page", 390),
        ("monthly", "email", 360),
        ("monthly", "email", 700),
    ],
)
def test_period_reports_fit_phones_the_email_and_the_desktop(browser, period_reports, kind, medium, width):
    found = layout(browser, period_reports[kind][medium], width)
    assert found["wide"] == [] and found["scrolling"] == [], (found["wide"], found["scrolling"])
    assert found["scrollWidth"] <= found["width"]
    assert found["kpis"] == 8 and found["cards"] == [], found["cards"]
    assert len(found["charts"]) == 7 and all(chart["loaded"] for chart in found["charts"])
