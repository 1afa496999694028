"""Benchmark of `minidrama serve`'s events route: concurrent clients posting batches of events.

A real `minidrama serve` (any free port) on a fresh local lake with one registered app; --clients
threads (default 4) each post --requests batches of --batch events (default 500, ~2% invalid, the
generator of ``bench/ingest_bench.py``) over one keep-alive connection, as fast as the answers come.
Every answer must be 202 with all events counted. Reports events/s (events acknowledged over the
wall time from the first request to the last answer) and the median latency of a request, median
of --runs, each run on a new server and lake.

Four servers, runs alternating: the default (``minidrama serve``: worker processes, one per
core, the bulk path, accepted events journaled before the 202 and stored in the lake's Parquet
files every second), the same storing each group of batches in the lake's files before their
202s (``--flush-seconds 0``, as before the journal), the default with one process (``--workers
1``: requests resolved on a thread of the server), and one process with the per-event path (the
ingest function's; each batch written to the lake's files before its 202), the baseline of the
ratios. After each run the lake must hold every accepted event once (and the quarantine every
rejected one), in how many Parquet files is reported:

    .venv/bin/python bench/serve_ingest_bench.py [--runs 3] [--clients 4] [--batch 500] [--requests 60]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_server import serving  # noqa: E402
from ingest_bench import make_events  # noqa: E402

PYTHON = sys.executable
APP = "bench-app"
# The server with the per-event path: its lake sink without write_table is a plain Sink.
PER_EVENT_SERVER = (
    "import sys; from minidrama import server; del server._LakeSink.write_table; "
    "from minidrama.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def bodies(clients: int, requests: int, batch: int) -> list[list[bytes]]:
    """Each client's request bodies: distinct events everywhere."""
    return [
        [
            json.dumps({"events": make_events(batch, seed=1000 * client + number)}, default=_json).encode()
            for number in range(requests)
        ]
        for client in range(clients)
    ]


# variant -> (the server's command, its --workers)
VARIANTS: dict[str, tuple[list[str], list[str]]] = {
    "workers": ([PYTHON, "-m", "minidrama"], []),
    "no journal": ([PYTHON, "-m", "minidrama"], ["--flush-seconds", "0"]),
    "1 process": ([PYTHON, "-m", "minidrama"], ["--workers", "1"]),
    "per-event": ([PYTHON, "-c", PER_EVENT_SERVER], ["--workers", "1", "--flush-seconds", "0"]),
}


def run_once(variant: str, work: list[list[bytes]], batch: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as root:
        lake = Path(root) / "lake"
        added = subprocess.run(
            [PYTHON, "-m", "minidrama", "apps", "add", APP, "--lake", str(lake)],
            check=True,
            capture_output=True,
            text=True,
        )
        key = json.loads(added.stdout)["api_key"]
        command, options = VARIANTS[variant]
        with serving(lake, command, options) as base:
            host, port = base.removeprefix("http://").split(":")
            latencies: list[float] = []
            failures: list[str] = []
            counted = [0]
            accepted = [0]
            lock = threading.Lock()
            start = threading.Barrier(len(work) + 1)

            def client(requests: list[bytes]) -> None:
                connection = http.client.HTTPConnection(host, int(port), timeout=60)
                start.wait()
                for body in requests:
                    began = time.perf_counter()
                    connection.request(
                        "POST",
                        f"/v1/apps/{APP}/events",
                        body,
                        {"x-api-key": key, "content-type": "application/json"},
                    )
                    answer = connection.getresponse()
                    data = answer.read()
                    took = time.perf_counter() - began
                    with lock:
                        latencies.append(took)
                        if answer.status != 202:
                            failures.append(f"{answer.status} {data[:200]!r}")
                        else:
                            result = json.loads(data)
                            counted[0] += result["accepted"] + len(result["rejected"])
                            accepted[0] += result["accepted"]
                connection.close()

            threads = [threading.Thread(target=client, args=(requests,)) for requests in work]
            for thread in threads:
                thread.start()
            start.wait()
            began = time.perf_counter()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - began
        expected = sum(len(requests) for requests in work) * batch
        if failures or counted[0] != expected:
            raise SystemExit(
                f"the server did not take every event: {failures[:3]} {counted[0]} of {expected}"
            )
        # the server stopped (SIGTERM): everything it acknowledged is in the lake's files
        files = sorted((lake / "events").rglob("*.parquet"))
        stored = pq.ParquetDataset(files).read(columns=["event_id"]).column("event_id")
        quarantined = sum(
            len(path.read_bytes().splitlines()) for path in (lake / "quarantine").rglob("*.jsonl")
        )
        if len(stored) != accepted[0] or len(set(stored.to_pylist())) != len(stored):
            raise SystemExit(f"the lake holds {len(stored)} rows for {accepted[0]} events accepted")
        if quarantined != expected - accepted[0]:
            raise SystemExit(
                f"the quarantine holds {quarantined} of {expected - accepted[0]} rejected events"
            )
        return {
            "events_per_s": expected / wall,
            "median_latency_ms": statistics.median(latencies) * 1000,
            "files": len(files),
        }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--requests", type=int, default=60, help="per client")
    parser.add_argument("--only", choices=sorted(VARIANTS), action="append", help="only these (repeatable)")
    args = parser.parse_args()
    work = bodies(args.clients, args.requests, args.batch)
    variants = args.only or list(VARIANTS)
    results: dict[str, list[dict[str, float]]] = {variant: [] for variant in variants}
    for run in range(args.runs):
        for variant in variants if run % 2 == 0 else list(reversed(variants)):
            results[variant].append(run_once(variant, work, args.batch))
    print(
        f"minidrama serve, {args.clients} clients x {args.requests} requests of {args.batch} events "
        f"(median of {args.runs} runs):"
    )
    medians = {}
    for variant, runs in results.items():
        rate = statistics.median(run["events_per_s"] for run in runs)
        latency = statistics.median(run["median_latency_ms"] for run in runs)
        files = statistics.median(run["files"] for run in runs)
        medians[variant] = rate
        print(
            f"  {variant:<10} {rate:>9,.0f} events/s   median request {latency:6.1f} ms   "
            f"{files:,.0f} Parquet files"
        )
    if "per-event" in medians:
        for variant in [variant for variant in medians if variant != "per-event"]:
            print(f"  {variant} / per-event: {medians[variant] / medians['per-event']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
