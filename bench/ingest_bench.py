"""Benchmark of the ingestion path: the ingest function's work per request, the writer's per SQS batch,
and `minidrama ingest` of a big NDJSON file against a DuckDB baseline.

Scenarios (a) and (b) each run in a fresh process (so that peak RSS belongs to it alone), median of
--runs (default 5):

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

  (c) file    one NDJSON file of --lines events (default 1,000,000, ~240 MiB; the mix of
              :func:`make_events` with its ~2% invalid events, amounts as JSON numbers), written
              once and cached under bench/out/ingest/ by size and seed, then ingested from disk
              (page cache warmed) into a fresh directory by three commands, each run in a fresh
              process, median of --runs (default 3), the order of the three rotated from run to
              run so that drift of a noisy machine hits all:
                bulk       `minidrama ingest --quiet` (column-wise checks, worker processes from
                           32 MiB of input, one Parquet file per hour partition)
                per-event  `minidrama ingest --quiet --per-event` (the API's validator, written
                           every 10,000 lines)
                duckdb     bench/ingest_duckdb_baseline.py: one DuckDB statement checking the main
                           rules, dropping failures (no quarantine, no reasons), first copy of each
                           event_id, COPY ... PARTITION_BY (dt, hour) zstd Parquet
              Reported per command: wall seconds of the process (interpreter start and imports
              included), input lines per second, CPU seconds of the process and all its
              descendants (this process becomes their subreaper, so the bulk path's workers,
              children of multiprocessing's fork server, are counted), the peak RSS of its
              largest process, the peak of the PSS summed over its process tree (sampled every
              0.1 s), accepted and rejected counts as printed, rows and Parquet files actually
              written; then bulk's speed-up over per-event and bulk's time as a multiple of the
              DuckDB baseline's, all from the same run. The two minidrama paths must store the
              same rows; the baseline should store about as many (it skips the finer rules).

Usage: .venv/bin/python bench/ingest_bench.py [--runs N] [--scenario ingest|writer|file ...]
           [--lines 1000000] [--seed 1] [--duckdb-threads N] [--workdir bench/out/ingest] [--json]

  e.g. --scenario file --lines 20000 --runs 1 for a quick check; --json prints every result as
  one JSON object instead of the tables.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
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
    return list(iter_events(count, seed, invalid_rate))


def iter_events(count: int, seed: int, invalid_rate: float = 0.02) -> Iterator[dict[str, Any]]:
    """The events of :func:`make_events`, one at a time (for files too big to hold as a list)."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
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
        yield event


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


# --- (c) file: `minidrama ingest` of one NDJSON file, bulk and per event, and the DuckDB baseline ---

BENCH_DIR = Path(__file__).resolve().parent
FILE_APP = "bench-app"
SAMPLE_SECONDS = 0.1


def _json_number(value: Any) -> Any:
    """A Decimal amount as a JSON number (a float that prints as the same decimal)."""
    if isinstance(value, Decimal):
        number = float(value)
        if Decimal(repr(number)) != value:
            raise TypeError(f"{value} has no exact short float form")
        return number
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def events_file(workdir: Path, lines: int, seed: int) -> Path:
    """The NDJSON file of ``lines`` events of :func:`iter_events` (~2% invalid), made once per size, seed."""
    path = workdir / f"events-{lines}-seed{seed}.ndjson"
    if path.exists():
        return path
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"writing {path} ({lines:,} events) ...", file=sys.stderr, flush=True)
    partial = path.with_suffix(".partial")
    encoder = json.JSONEncoder(default=_json_number, separators=(",", ":"))
    with partial.open("w", encoding="utf-8") as handle:
        batch: list[str] = []
        for event in iter_events(lines, seed):
            batch.append(encoder.encode(event))
            if len(batch) == 10_000:
                handle.write("\n".join(batch) + "\n")
                batch = []
        if batch:
            handle.write("\n".join(batch) + "\n")
    partial.replace(path)
    return path


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (/proc/PID/task/TID/children)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                with contextlib.suppress(OSError):
                    pending.extend(int(child) for child in (task / "children").read_text().split())
    return found


def _memory_kb(pid: int) -> int:
    """The process's proportional set size (shared pages split between their users), else its RSS."""
    for name, field in (("smaps_rollup", "Pss:"), ("status", "VmRSS:")):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                if line.startswith(field):
                    return int(line.split()[1])
    return 0


class TreeSampler(threading.Thread):
    """Samples the summed memory (PSS) of a process and all its descendants while it runs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.processes = pid, 0, 1
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            pids = _descendants(self.pid)
            self.processes = max(self.processes, len(pids))
            self.peak_kb = max(self.peak_kb, sum(_memory_kb(pid) for pid in pids))
            self.done.wait(SAMPLE_SECONDS)


def _minidrama_command() -> list[str]:
    script = Path(sys.executable).with_name("minidrama")
    return [str(script)] if script.exists() else [sys.executable, "-m", "minidrama"]


def file_variants(path: Path, threads: int | None) -> dict[str, Callable[[Path], list[str]]]:
    """The commands timed by (c), each writing into a fresh directory."""
    ingest = [*_minidrama_command(), "ingest", "--app", FILE_APP, "--quiet"]
    baseline = [sys.executable, str(BENCH_DIR / "ingest_duckdb_baseline.py"), str(path)]
    extra = ["--threads", str(threads)] if threads else []
    return {
        "bulk": lambda out: [*ingest, "--lake", str(out), str(path)],
        "per-event": lambda out: [*ingest, "--per-event", "--lake", str(out), str(path)],
        "duckdb": lambda out: [*baseline, str(out), "--app", FILE_APP, "--json", *extra],
    }


def _parquet_stats(out: Path) -> tuple[int, int, int]:
    """Files, rows and bytes of the Parquet written under ``out``."""
    import pyarrow.parquet as pq

    files = sorted((out / "events").rglob("*.parquet"))
    rows = sum(pq.read_metadata(file).num_rows for file in files)
    return len(files), rows, sum(file.stat().st_size for file in files)


def _become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``).

    The bulk path's worker processes are children of multiprocessing's fork server, which the CLI
    never waits for: without this their CPU time and memory would reach no ``wait4``. As the
    subreaper, this process reaps the fork server once the CLI has exited, and with it the usage
    of the workers it reaped."""
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _reap_rest(deadline_s: float = 30.0) -> list[Any]:
    """Wait for every remaining descendant (orphans reparented to this subreaper); their rusages."""
    usages = []
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        try:
            pid, _status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.02)
            continue
        usages.append(usage)
    return usages


def run_command(command: list[str], out: Path) -> dict[str, Any]:
    """One run in a fresh process: wall seconds, CPU seconds, peak memory, what it wrote."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        sampler = TreeSampler(process.pid)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        sampler.done.set()
        sampler.join()
        usages = [usage, *_reap_rest()]  # the fork server and its workers, when there were some
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        output, errors = stdout.read().decode(), stderr.read().decode()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{errors}{output}")
    printed = json.loads(output.strip().splitlines()[-1])
    files, rows, size = _parquet_stats(out)
    return {
        "seconds": elapsed,
        # user + sys of the process and all its descendants (reaped by it or by this subreaper)
        "cpu_s": sum(used.ru_utime + used.ru_stime for used in usages),
        "max_rss_mb": max(used.ru_maxrss for used in usages) / 1024,  # the largest single process
        "tree_pss_mb": sampler.peak_kb / 1024,  # the sum over the process tree, sampled
        "processes": sampler.processes,
        "files": files,
        "rows_stored": rows,
        "parquet_mb": size / 2**20,
        "accepted": printed.get("accepted", printed.get("rows_out")),
        "rejected": printed.get("rejected", printed.get("dropped")),
    }


def run_file(lines: int, seed: int, runs: int, workdir: Path, threads: int | None) -> dict[str, Any]:
    path = events_file(workdir, lines, seed)
    subreaper = _become_subreaper()
    with path.open("rb") as handle:  # into the page cache, so the first variant does not pay the disk
        while handle.read(1 << 24):
            pass
    variants = file_variants(path, threads)
    names = list(variants)
    measured: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for run in range(runs):
        order = names[run % len(names) :] + names[: run % len(names)]  # rotated: drift hits all
        for name in order:
            out = Path(tempfile.mkdtemp(prefix=f"run-{name}-", dir=workdir))
            try:
                measured[name].append(run_command(variants[name](out), out))
            finally:
                shutil.rmtree(out, ignore_errors=True)
    results = {}
    for name, samples in measured.items():
        median = statistics.median(sample["seconds"] for sample in samples)
        last = samples[-1]
        results[name] = {
            "median_s": median,
            "events_per_s": lines / median,
            "seconds": [round(sample["seconds"], 3) for sample in samples],
            "cpu_s": statistics.median(sample["cpu_s"] for sample in samples),
            "max_rss_mb": max(sample["max_rss_mb"] for sample in samples),
            "tree_pss_mb": max(sample["tree_pss_mb"] for sample in samples),
            "processes": max(sample["processes"] for sample in samples),
            **{key: last[key] for key in ("files", "rows_stored", "parquet_mb", "accepted", "rejected")},
        }
    bulk, per_event, duckdb = (results[name] for name in ("bulk", "per-event", "duckdb"))
    return {
        "scenario": "file",
        "lines": lines,
        "seed": seed,
        "file": str(path),
        "file_mb": path.stat().st_size / 2**20,
        "runs": runs,
        "order": "rotated per run",
        "cpu_includes_workers": subreaper,
        "variants": results,
        "bulk_speedup_vs_per_event": per_event["median_s"] / bulk["median_s"],
        "bulk_time_vs_duckdb": bulk["median_s"] / duckdb["median_s"],
        "stored_difference_duckdb_vs_bulk": duckdb["rows_stored"] - bulk["rows_stored"],
    }


def print_per_request(results: list[dict[str, Any]], runs: int) -> None:
    header = f"{'scenario':<44} {'median':>9} {'events/s':>10} {'py peak':>9} {'arrow pk':>9} {'RSS pk':>8}"
    print(f"ingestion benchmark (median of {runs} runs, one core, Python {sys.version.split()[0]})")
    print(header)
    print("-" * len(header))
    for result in results:
        print(
            f"{result['scenario']:<44} {result['median_s'] * 1000:>7.1f}ms {result['events_per_s']:>10,.0f} "
            f"{result['tracemalloc_peak_mb']:>7.1f}MB {result['arrow_peak_mb']:>7.1f}MB "
            f"{result['peak_rss_mb']:>6.0f}MB"
        )
        print(f"  {result['detail']}")


def print_file(result: dict[str, Any]) -> None:
    print(
        f"file: minidrama ingest of {result['lines']:,} NDJSON lines ({result['file_mb']:.0f} MiB, "
        f"seed {result['seed']}) vs the DuckDB baseline; median of {result['runs']} runs, "
        "fresh processes, order rotated per run"
    )
    header = (
        f"{'variant':<10} {'median':>8} {'lines/s':>10} {'CPU':>7} {'max RSS':>8} {'tree PSS':>9} "
        f"{'procs':>5} {'accepted':>9} {'rejected':>8} {'stored':>9} {'files':>5} {'Parquet':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, row in result["variants"].items():
        print(
            f"{name:<10} {row['median_s']:>7.2f}s {row['events_per_s']:>10,.0f} {row['cpu_s']:>6.1f}s "
            f"{row['max_rss_mb']:>6.0f}MB {row['tree_pss_mb']:>7.0f}MB {row['processes']:>5} "
            f"{row['accepted']:>9,} {row['rejected']:>8,} {row['rows_stored']:>9,} {row['files']:>5} "
            f"{row['parquet_mb']:>6.1f}MB"
        )
    print(
        f"  bulk is {result['bulk_speedup_vs_per_event']:.1f}x as fast as per-event; bulk takes "
        f"{result['bulk_time_vs_duckdb']:.2f}x the DuckDB baseline's time; DuckDB stored "
        f"{result['stored_difference_duckdb_vs_bulk']:+,} rows vs bulk"
    )
    print(
        "  seconds: wall time of the process (start and imports included); CPU: user+sys of it and all "
        f"its descendants{'' if result['cpu_includes_workers'] else ' it waited for (no subreaper)'}; "
        "max RSS: its largest process; tree PSS: summed over its processes, sampled every "
        f"{SAMPLE_SECONDS:g} s; procs: most processes seen at once; accepted counts repeated event ids "
        "(DuckDB: rows written)"
    )


CHILD_SCENARIOS = {"ingest": run_ingest, "writer": run_writer}
SCENARIOS = ("ingest", "writer", "file")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, help="runs per figure (default 5; 3 for file)")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="only these (repeatable)")
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines of the file of (c)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the file of (c)")
    parser.add_argument("--duckdb-threads", type=int, help="threads of the DuckDB baseline (default: cores)")
    parser.add_argument("--workdir", type=Path, default=BENCH_DIR / "out" / "ingest", help="file cache, runs")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--child", choices=sorted(CHILD_SCENARIOS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILD_SCENARIOS[args.child](args.runs or 5)))
        return 0
    chosen = args.scenario or list(SCENARIOS)
    results = []
    for name in (name for name in CHILD_SCENARIOS if name in chosen):
        done = subprocess.run(
            [sys.executable, __file__, "--child", name, "--runs", str(args.runs or 5)],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(done.stdout))
    file_result = (
        run_file(args.lines, args.seed, args.runs or 3, args.workdir, args.duckdb_threads)
        if "file" in chosen
        else None
    )
    if args.json:
        print(json.dumps({"python": sys.version.split()[0], "per_request": results, "file": file_result}))
        return 0
    if results:
        print_per_request(results, args.runs or 5)
    if file_result:
        if results:
            print()
        print_file(file_result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
