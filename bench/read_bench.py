"""Benchmark of the read API on the local server (issue 9, "Speed"): the demo lake, over HTTP.

A real ``minidrama serve`` on the demo's lake (``make demo``'s ``demo-out/lake``, or one the bench
makes in --workdir with ``minidrama demo``), a read token from ``minidrama apps token``, then:

  cold   the first ``GET /v1/apps/demo-drama/metrics?from=F&to=T`` of a range (the range
         document computed from the stored facts), for the 35-day range and a 7-day one;
  warm   the same request again (the server keeps range documents by the facts files they come
         from): median of --runs. Target: 35 days <= 200 ms warm.
  daily  ``GET .../metrics/daily`` of the 35 days (the documents behind the line charts), median.
  csv    the 35-day range as CSV, warm, median.

Every time is one whole HTTP exchange measured by the client (connect, request, the whole body).

Usage: .venv/bin/python bench/read_bench.py [--runs 9] [--lake demo-out/lake] [--workdir bench/out/read]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

from demo_server import APP, serving_demo

ROOT = Path(__file__).resolve().parents[1]


def _get(url: str, token: str) -> tuple[float, int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as answer:
        body = answer.read()
    return (time.perf_counter() - started) * 1000, answer.status, body


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--lake", type=Path, default=ROOT / "demo-out" / "lake")
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "read")
    args = parser.parse_args()
    with serving_demo(args.lake, args.workdir) as served:
        lake, base, token = served.lake, served.base, served.token
        api = f"{base}/v1/apps/{APP}"
        days = json.loads(_get(f"{api}/metrics/days", token)[2])
        last = date.fromisoformat(days["last_day"])
        ranges = {"35 days": (last - timedelta(days=34), last), "7 days": (last - timedelta(days=6), last)}
        print(f"lake {lake} (data through {last}), median of {args.runs} warm runs\n")
        print(f"{'request':<28} {'cold ms':>9} {'warm ms':>9} {'bytes':>9}")
        for label, (first, end) in ranges.items():
            url = f"{api}/metrics?from={first}&to={end}"
            cold, status, body = _get(url, token)
            assert status == 200
            warm = statistics.median(_get(url, token)[0] for _ in range(args.runs))
            print(f"{'metrics, ' + label:<28} {cold:>9.0f} {warm:>9.0f} {len(body):>9,}")
        first, end = ranges["35 days"]
        daily = [
            _get(f"{api}/metrics/daily?from={first}&to={end}&segment=all", token)
            for _ in range(args.runs + 1)
        ]
        print(
            f"{'metrics/daily, 35 days':<28} {daily[0][0]:>9.0f}"
            f" {statistics.median(t for t, _s, _b in daily[1:]):>9.0f}"
            f" {len(daily[0][2]):>9,}"
        )
        csv = [_get(f"{api}/metrics?from={first}&to={end}&format=csv", token) for _ in range(args.runs)]
        print(
            f"{'metrics as CSV, 35 days':<28} {'':>9} {statistics.median(t for t, _s, _b in csv):>9.0f}"
            f" {len(csv[0][2]):>9,}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
