"""The report page in a real browser (headless Chromium): every chart image loads, nothing overflows."""

from __future__ import annotations

import subprocess
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest

from minidrama.config import app_or_default
from minidrama.lake import LocalStorage, report_key
from minidrama.report import report_command
from tests.report_fixtures import write_history

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
