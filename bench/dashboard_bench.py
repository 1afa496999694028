"""Benchmark of the dashboard in Chromium on the demo lake (issue 9, "Speed").

A real ``minidrama serve`` on the demo's lake (``demo-out/lake`` of ``make demo``, or one made in
--workdir), the page opened with a token from ``minidrama apps token``, then, from the change
event to the last number drawn (``window.minidramaDashboard.lastRenderAt``), medians of --runs:

  preset   choosing a date-range preset (the page fetched the presets in the background after
           its first range; a preset asked before is drawn from the page's cache);
  filter   choosing an OS or a region (drawn from the range document the page has);
  custom   a custom range never asked for before (the server computes its range document).
           Target: <= 300 ms for changing the range or a filter.

Usage: .venv/bin/python bench/dashboard_bench.py [--runs 5] [--lake demo-out/lake]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from demo_server import APP, serving_demo
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]


def _change(page, select: str, value: str) -> float:
    """Milliseconds from dispatching the change to the end of the redraw it causes."""
    before = page.evaluate("Number(document.documentElement.dataset.renders || 0)")
    started = page.evaluate(
        """([select, value]) => { const t = performance.now(); const s = document.querySelector(select);
        s.value = value; s.dispatchEvent(new Event('change')); return t; }""",
        [select, value],
    )
    deadline = time.monotonic() + 120
    while page.evaluate(
        f"Number(document.documentElement.dataset.renders || 0) <= {before}"
        " || Boolean(document.documentElement.dataset.loading)"
    ):
        assert time.monotonic() < deadline, "the page did not redraw"
        time.sleep(0.005)
    return float(page.evaluate("window.minidramaDashboard.lastRenderAt")) - float(started)


def _custom(page, first: date, last: date) -> float:
    page.select_option("#preset", "custom")
    page.fill("#from", first.isoformat())
    page.fill("#to", last.isoformat())
    before = page.evaluate("Number(document.documentElement.dataset.renders || 0)")
    started = page.evaluate("performance.now()")
    page.click("#apply-custom")
    while page.evaluate(f"Number(document.documentElement.dataset.renders || 0) <= {before}"):
        time.sleep(0.005)
    return float(page.evaluate("window.minidramaDashboard.lastRenderAt")) - float(started)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lake", type=Path, default=ROOT / "demo-out" / "lake")
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "dashboard")
    args = parser.parse_args()
    with serving_demo(args.lake, args.workdir) as served:
        lake, base, token = served.lake, served.base, served.token
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/v1/apps/{APP}/dashboard#token={token}")
            page.wait_for_selector("html[data-renders]", timeout=60000)
            page.wait_for_timeout(4000)  # the presets' background fetches
            presets = ["14", "30", "latest", "this-month", "7"]
            segments = ["os:ios", "region:US", "os:android", "region:PH", ""]
            timings: dict[str, list[float]] = {"preset": [], "filter": [], "custom": []}
            for run in range(args.runs):
                timings["preset"].append(_change(page, "#preset", presets[run % len(presets)]))
                select = "#os" if segments[run % len(segments)].startswith("os:") else "#region"
                timings["filter"].append(_change(page, select, segments[run % len(segments)]))
            last = date.fromisoformat(page.evaluate("window.minidramaDashboard.state.days.last_day"))
            for run in range(args.runs):
                first = last - timedelta(days=3 + run * 2)  # ranges no preset has
                timings["custom"].append(_custom(page, first, last - timedelta(days=1)))
            browser.close()
    print(f"lake {lake}: click to the last number drawn, median of {args.runs} (min..max), ms")
    for kind, values in timings.items():
        print(f"  {kind:<7} {statistics.median(values):7.0f}   ({min(values):.0f}..{max(values):.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
