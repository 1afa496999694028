"""Benchmark of the ingestion path: the ingest function's work per request, and the writer's per SQS batch.

Scenarios, each in a fresh process (so that peak RSS belongs to it alone), median of --runs:

  (a) ingest  one API request of 1,000 events, end to end as the ingest function does it:
              body parse (exact decimals), key check, validation, quarantine of the ~2% invalid
              events (in-memory lake), row encoding, packing into <= 256 KiB messages and
              SendMessageBatch calls. SQS is a fake client that only counts calls and bytes (no
              network, no moto), so the figure is the CPU cost per core of validate-and-enqueue.
  (b) writer  one SQS batch carrying 10,000 events (packed as the ingest function packs them)
              through the writer function's processor: decode, group the whole batch by
              partition (3 hours), typed Arrow tables, zstd Parquet, put into an in-memory lake.

Peak memory is reported three ways: tracemalloc's peak of Python allocations during one call
(a separate run, as tracing slows the code), Arrow's memory pool peak (Arrow buffers are not
seen by tracemalloc), and the process's peak RSS (``resource.getrusage``, whole process,
interpreter and imports included).

Usage: .venv/bin/python bench/ingest_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

BATCH_EVENTS = 1_000
WRITER_EVENTS = 10_000
RECEIVED_AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ENTRY_POINTS = ("feed", "search", "profile_page", "share_link", "ads")
FUNNEL = (
    "entrance_exposure",
    "entrance_click",
    "minis_visit",
    "last_free_episode_watch",
    "tiktok_payment_panel_show",
)


def make_events(count: int, seed: int, invalid_rate: float = 0.02) -> list[dict[str, Any]]:
    """A realistic mix: page views, launches, session ends, orders; ``invalid_rate`` of them invalid."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    events = []
    for n in range(count):
        user = rng.randrange(5_000)
        moment = start + timedelta(seconds=rng.randrange(3 * 3600), milliseconds=rng.randrange(1000))
        event: dict[str, Any] = {
            "event_id": f"{seed}-{n}-{rng.getrandbits(48):012x}",
            "event_time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "user_id": f"user-{user}",
            "os": rng.choice(("ios", "android")),
            "region": rng.choice(("US", "GB", "PH", "ID", "BR", "MX")),
        }
        kind = rng.random()
        if kind < 0.25:
            event["event_name"] = "app_launch"
            event["session_id"] = f"s-{user}-{n}"
            event["properties"] = {
                "entry_point": rng.choice(ENTRY_POINTS),
                "launch_ms": rng.randrange(300, 3000),
                "device_brand": "Apple",
                "device_model": "iPhone 15",
                "tiktok_version": "37.2.0",
                "gender": rng.choice(("female", "male")),
                "age_group": "25-34",
            }
        elif kind < 0.45:
            event["event_name"] = "session_end"
            event["session_id"] = f"s-{user}-{n}"
            event["properties"] = {"duration_ms": rng.randrange(1_000, 1_800_000)}
        elif kind < 0.5:
            event["event_name"] = "recharge_order"
            event["properties"] = {
                "order_id": f"o-{n}",
                "amount": round(rng.choice((0.99, 4.99, 9.99, 19.99)), 2),
                "currency": "USD",
                "beans": 500,
                "product_id": "beans-500",
            }
        elif kind < 0.55:
            event["event_name"] = "redeem_order"
            event["properties"] = {
                "order_id": f"r-{n}",
                "product_id": f"episode-{rng.randrange(80)}",
                "beans": 60,
            }
        else:
            event["event_name"] = rng.choice(FUNNEL)
            event["properties"] = {
                "series_id": f"series-{rng.randrange(30)}",
                "episode": rng.randrange(1, 80),
            }
        if rng.random() < invalid_rate:
            event["region"] = "Atlantis"  # invalid: quarantined
        events.append(event)
    return events


class MemoryStorage:
    """An in-memory lake, so that the figures are CPU, not disk or network."""

    uri = "memory://"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self.objects[key] = data

    def get_bytes(self, key: str) -> bytes:
        from minidrama.lake import NotFoundError

        try:
            return self.objects[key]
        except KeyError as error:
            raise NotFoundError(key) from error


class CountingSqs:
    """A fake SQS client: counts SendMessageBatch calls and bytes, keeps the bodies for the writer bench."""

    def __init__(self) -> None:
        self.calls = 0
        self.bytes = 0
        self.bodies: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        for entry in Entries:
            self.bytes += len(entry["MessageBody"].encode())
            self.bodies.append(entry["MessageBody"])
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_ingest(runs: int) -> dict[str, Any]:
    from minidrama.api import AppDirectory, handle_post_events
    from minidrama.config import register_app
    from minidrama.queue import SqsSink

    storage = MemoryStorage()
    _app, key = register_app(storage, "bench-app")  # type: ignore[arg-type]
    directory = AppDirectory(storage)  # type: ignore[arg-type]
    bodies = [json.dumps({"events": make_events(BATCH_EVENTS, seed)}).encode() for seed in range(runs + 1)]

    def once(body: bytes) -> tuple[float, CountingSqs, Any]:
        client = CountingSqs()
        started = time.perf_counter()
        response = handle_post_events(
            "bench-app",
            {"x-api-key": key},
            body,
            directory=directory,
            storage=storage,  # type: ignore[arg-type]
            sink=SqsSink(client, "https://sqs/bench"),
            received_at=RECEIVED_AT,
        )
        elapsed = time.perf_counter() - started
        assert response.status == 202, response.body
        return elapsed, client, response

    once(bodies[-1])  # warm-up (imports, caches)
    timings = []
    for body in bodies[:runs]:
        elapsed, client, response = once(body)
        timings.append(elapsed)
    tracemalloc.start()
    once(bodies[0])
    _current, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    median = statistics.median(timings)
    return {
        "scenario": f"ingest: validate + enqueue {BATCH_EVENTS:,} events",
        "median_s": median,
        "events_per_s": BATCH_EVENTS / median,
        "detail": (
            f"{response.accepted} accepted, {response.rejected} quarantined; {client.calls} SendMessageBatch "
            f"call(s), {len(client.bodies)} message(s), {client.bytes / 1024:.0f} KiB; "
            f"request body {len(bodies[0]) / 1024:.0f} KiB"
        ),
        "tracemalloc_peak_mb": traced_peak / 2**20,
        "arrow_peak_mb": 0.0,
        "peak_rss_mb": _peak_rss_mb(),
    }


def run_writer(runs: int) -> dict[str, Any]:
    import pyarrow as pa
    from aws_lambda_powertools.utilities.batch import process_partial_response

    from minidrama.config import Rates
    from minidrama.ingestion import ingest
    from minidrama.queue import SqsSink
    from minidrama.writer import PartitionBatchProcessor, decode_record

    def sqs_event(seed: int) -> dict[str, Any]:
        from minidrama.config import AppConfig

        client = CountingSqs()
        events = make_events(WRITER_EVENTS, seed, invalid_rate=0.0)
        for start in range(0, WRITER_EVENTS, BATCH_EVENTS):  # as 10 API requests would enqueue them
            ingest(
                MemoryStorage(),  # type: ignore[arg-type]
                SqsSink(client, "https://sqs/bench"),
                AppConfig("bench-app"),
                events[start : start + BATCH_EVENTS],
                received_at=RECEIVED_AT,
                rates=Rates(),
            )
        records = [
            {
                "messageId": f"m-{n}",
                "receiptHandle": f"h-{n}",
                "body": body,
                "attributes": {},
                "eventSource": "aws:sqs",
            }
            for n, body in enumerate(client.bodies)
        ]
        return {"Records": records}

    triggers = [sqs_event(seed) for seed in range(runs + 1)]
    rows_in = [sum(len(json.loads(r["body"])["events"]) for r in t["Records"]) for t in triggers]

    def once(trigger: dict[str, Any]) -> tuple[float, PartitionBatchProcessor, MemoryStorage]:
        storage = MemoryStorage()
        processor = PartitionBatchProcessor(storage)  # type: ignore[arg-type]
        started = time.perf_counter()
        response = process_partial_response(event=trigger, record_handler=decode_record, processor=processor)
        elapsed = time.perf_counter() - started
        assert response == {"batchItemFailures": []}, response
        return elapsed, processor, storage

    once(triggers[-1])
    timings = []
    for trigger in triggers[:runs]:
        elapsed, processor, storage = once(trigger)
        timings.append(elapsed)
    pool = pa.default_memory_pool()
    tracemalloc.start()
    once(triggers[0])
    _current, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    median = statistics.median(timings)
    parquet_bytes = sum(len(data) for data in storage.objects.values())
    return {
        "scenario": f"writer: SQS batch of {rows_in[0]:,} events to Parquet",
        "median_s": median,
        "events_per_s": rows_in[0] / median,
        "detail": (
            f"{len(triggers[0]['Records'])} messages -> {len(processor.outcome.keys)} files, "
            f"{parquet_bytes / 1024:.0f} KiB zstd Parquet"
        ),
        "tracemalloc_peak_mb": traced_peak / 2**20,
        "arrow_peak_mb": pool.max_memory() / 2**20,
        "peak_rss_mb": _peak_rss_mb(),
    }


SCENARIOS = {"ingest": run_ingest, "writer": run_writer}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(SCENARIOS[args.scenario](args.runs)))
        return 0
    results = []
    for name in SCENARIOS:
        done = subprocess.run(
            [sys.executable, __file__, "--scenario", name, "--runs", str(args.runs)],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(done.stdout))
    header = f"{'scenario':<44} {'median':>9} {'events/s':>10} {'py peak':>9} {'arrow pk':>9} {'RSS pk':>8}"
    print(f"ingestion benchmark (median of {args.runs} runs, one core, Python {sys.version.split()[0]})")
    print(header)
    print("-" * len(header))
    for result in results:
        print(
            f"{result['scenario']:<44} {result['median_s'] * 1000:>7.1f}ms {result['events_per_s']:>10,.0f} "
            f"{result['tracemalloc_peak_mb']:>7.1f}MB {result['arrow_peak_mb']:>7.1f}MB "
            f"{result['peak_rss_mb']:>6.0f}MB"
        )
        print(f"  {result['detail']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
