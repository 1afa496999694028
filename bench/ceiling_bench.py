"""Benchmark of the embedded metrics engine's ceiling: ``minidrama compute`` of one heavy day.

The lake of bench/metrics_bench.py scaled by a size S, the millions of events on the measured day
(about 1,000,000 x S events): every day of it has metrics_bench's active and new users times S
(50,000 x S and 3,000 x S), so the 60 days of history and the user base grow with the day (the
engine's rollup of D-1 holds about 283,000 x S users and 300,000 x S orders); S = 1 is
metrics_bench's lake. Measured for each size, each run in a fresh process whose TMPDIR, HOME and
working directory are a fresh empty directory (median of the runs):

  compute   ``python -m minidrama compute --lake L --app bench --date DAY --quiet`` in the daily
            steady state (every history day computed once before, then one warm-up compute of
            DAY, as scenario (b) of metrics_bench): wall time (interpreter start and imports
            included), peak RSS, and the peak bytes under its temporary directory (polled every
            0.2 s, so a peak shorter than that can be missed): what the Lambda's /tmp would hold.
            DuckDB spills to the working directory (.tmp) off a Lambda, so a spill counts too.
            The lake is local, so events and state are read in place: on S3 they are downloaded
            to /tmp first, and the notes add their bytes for an estimate of the Lambda's /tmp.
  core      the DuckDB core-subset script: one query over the same day's events Parquet (its 24
            hour partitions), one fresh process, giving per segment (all, each os, each region)
            the day's core metrics counted as the product counts them (each event_id once, its
            first-received copy; each order_id once per order event name): active users and
            visits, paying users, recharge orders and GMV, redeem orders, the funnel's page views
            (:func:`core_sql`; the metrics that need the history are left out). Its numbers must
            agree with the document's. Ratio: compute / core (medians). Target at 5 M: <= 1.5.
  baseline  a lighter script, the range bench's three metrics (active users, GMV with each
            order_id once, the funnel page views per segment, no event_id de-duplication): the
            floor of merely reading the day's columns and grouping them.
            The three kinds of run alternate, each first in turn.

Also reported for each size: the day's events, the bytes of its events Parquet (and per event) and
its active users (from the document; the baseline's must agree). The lakes are generated once per
size in --workdir (metrics_bench's generator, one process per size, --jobs at a time; about
60 s a million events on one core and 0.6 GB of memory a million: 20 M takes about 20 min and
12 GB) and reused, with the time it took to generate them and to compute their history.
With --lambda-mb the compute child gets AWS_LAMBDA_FUNCTION_MEMORY_SIZE, so DuckDB is configured
as on a Lambda of that size (threads, memory_limit, spilling under TMPDIR). With --profile, one
more compute per size, in process, times the engine's steps and its SQL statements.

Usage: .venv/bin/python bench/ceiling_bench.py [--sizes 1,5,20] [--runs N] [--workdir DIR]
    [--jobs 2] [--lambda-mb MB] [--profile] [--timeout 1800]
(--runs defaults to 3, and to 1 for sizes of 20 M and more.)
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYTHONPATH = f"{REPO / 'layers' / 'minidrama'}{os.pathsep}{REPO}"


sys.path.insert(0, str(HERE))
import metrics_bench  # noqa: E402  (bench/ is not a package; the generator's worker processes import it too)

DAY: date = metrics_bench.DAY
HISTORY_DAYS: int = metrics_bench.HISTORY_DAYS
FIRST = DAY - timedelta(days=HISTORY_DAYS)
APP = "bench"
BIG_SIZE = 20  # sizes from here on are measured once unless --runs says otherwise
POLL_SECONDS = 0.2
GENERATION_MB_PER_MILLION = 600  # the generator's peak RSS (it holds the heavy day in memory)


def _key(size: float) -> str:
    return f"lake-{size:g}m"


# --- the lakes ------------------------------------------------------------------------------------


def generate_scaled_lake(root: str, size: float) -> dict:
    """metrics_bench's lake with its users per day times ``size`` (run in a worker process: the
    module's constants are changed for the call); returns the day's events and the seconds."""
    scaled = {
        "ACTIVE_USERS": round(metrics_bench.ACTIVE_USERS * size),
        "NEW_USERS_PER_DAY": round(metrics_bench.NEW_USERS_PER_DAY * size),
    }
    saved = {name: getattr(metrics_bench, name) for name in scaled}
    started = time.perf_counter()
    try:
        for name, value in scaled.items():
            setattr(metrics_bench, name, value)
        day_events = metrics_bench.generate_lake(Path(root), HISTORY_DAYS)
    finally:
        for name, value in saved.items():
            setattr(metrics_bench, name, value)
    return {
        "size": size,
        "day_events": day_events,
        "active_users_simulated": scaled["ACTIVE_USERS"],
        "generate_seconds": round(time.perf_counter() - started, 1),
    }


def _available_mb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("inf")


def ensure_lakes(workdir: Path, sizes: list[float], jobs: int) -> dict[float, dict]:
    """Every size's lake and its record (generated when missing, ``jobs`` processes at a time)."""
    records = {}
    missing = []
    for size in sizes:
        record_path = workdir / f"{_key(size)}.json"
        record = json.loads(record_path.read_text()) if record_path.exists() else {}
        if "day_events" in record:
            records[size] = record
        else:
            shutil.rmtree(workdir / _key(size), ignore_errors=True)
            missing.append(size)
    if missing:
        missing.sort(reverse=True)  # the largest first: the small ones fill the other processes
        needed = sum(GENERATION_MB_PER_MILLION * size for size in missing[:jobs])
        if jobs > 1 and needed > 0.8 * _available_mb():
            print(f"generating one size at a time: {needed:.0f} MB needed for {jobs} at once")
            jobs = 1
        jobs = min(jobs, len(missing))
        print(f"generating {', '.join(f'{s:g} M' for s in missing)} ({jobs} processes) ...", flush=True)
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=jobs, max_tasks_per_child=1) as pool:
            futures = [pool.submit(generate_scaled_lake, str(workdir / _key(size)), size) for size in missing]
            for future in as_completed(futures):
                record = future.result()
                size = record["size"]
                (workdir / f"{_key(size)}.json").write_text(json.dumps(record))
                records[size] = record
                print(
                    f"  generated {size:g} M: {record['day_events']:,} events on {DAY}"
                    f" in {record['generate_seconds']:.0f} s",
                    flush=True,
                )
        print(f"generation took {time.perf_counter() - started:.0f} s", flush=True)
    return records


def day_event_files(lake: Path) -> list[Path]:
    """The events files of DAY's 24 hour partitions (the app's time zone is UTC)."""
    return sorted((lake / "events" / f"app_id={APP}" / f"dt={DAY.isoformat()}").glob("hour=*/*.parquet"))


def state_read_bytes(lake: Path) -> int:
    """Bytes of the engine's state a compute of DAY reads (the rollup of DAY - 1, the day facts of
    the cohort days): on an S3 lake they are downloaded to /tmp, like the day's events files."""
    from minidrama.metrics.period import Period

    index = json.loads((lake / "state" / f"app_id={APP}" / "index.json").read_text())
    entries = [index["rollups"].get((DAY - timedelta(days=1)).isoformat())]
    entries += [index["day_facts"].get(day.isoformat()) for day in Period.day(DAY).cohort_days if day != DAY]
    return sum(file["size"] for entry in entries if entry for file in entry["files"].values())


# --- fresh processes ------------------------------------------------------------------------------


def tree_bytes(root: Path) -> int:
    """Bytes of the files under ``root`` now (files vanishing meanwhile are skipped)."""
    total = 0
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        total += tree_bytes(Path(entry.path))
                    else:
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
    except OSError:
        pass
    return total


class PeakSize(threading.Thread):
    """Polls the size of a directory tree every POLL_SECONDS and keeps the largest."""

    def __init__(self, root: Path) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            self.peak = max(self.peak, tree_bytes(self.root))
            if self.done.wait(POLL_SECONDS):
                return


@dataclass
class Sample:
    seconds: float
    rss_mb: float
    tmp_mb: float
    cpu_seconds: float
    output: str


class ChildTimeout(Exception):
    pass


def run_child(command: list[str], scratch_root: Path, timeout: float, lambda_mb: int = 0) -> Sample:
    """Run ``command`` in a fresh process with TMPDIR, HOME and its working directory a fresh empty
    directory; wall time, peak RSS (its own, by wait4), peak bytes under that directory, CPU time."""
    scratch_root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=scratch_root))
    environment = dict(os.environ, PYTHONPATH=PYTHONPATH, TMPDIR=str(scratch), HOME=str(scratch))
    environment.pop("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", None)
    if lambda_mb:
        environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(lambda_mb)
    poller = PeakSize(scratch)
    try:
        with tempfile.TemporaryFile("w+") as output:
            poller.start()
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=output, text=True, env=environment, cwd=scratch)
            timer = threading.Timer(timeout, process.kill)
            timer.start()
            _, status, usage = os.wait4(process.pid, 0)
            elapsed = time.perf_counter() - started
            timer.cancel()
            poller.done.set()
            poller.join()
            process.returncode = os.waitstatus_to_exitcode(status)
            if process.returncode == -signal.SIGKILL:
                raise ChildTimeout(f"{shlex.join(command[1:4])} ran over {timeout:.0f} s")
            if process.returncode != 0:
                raise SystemExit(f"failed ({process.returncode}): {shlex.join(command)}")
            output.seek(0)
            return Sample(
                elapsed,
                usage.ru_maxrss / 1024,
                poller.peak / 2**20,
                usage.ru_utime + usage.ru_stime,
                output.read(),
            )
    finally:
        poller.done.set()
        shutil.rmtree(scratch, ignore_errors=True)


def compute_command(lake: Path, first: date, last: date) -> list[str]:
    command = [sys.executable, "-m", "minidrama", "compute", "--lake", str(lake), "--app", APP]
    command += ["--date", first.isoformat()]
    if last != first:
        command += ["--to", last.isoformat()]
    return [*command, "--quiet"]


def child_command(scenario: str, lake: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", scenario, "--lake", str(lake)]


# --- the scenarios (run in a child process) -------------------------------------------------------


def _day_sql_parts(lake: Path) -> tuple[str, str, str, str, str]:
    """DAY's events files, the funnel's stage names, its bounds and the segments, as SQL."""
    from minidrama.schema import FUNNEL_PAGE_VIEWS

    listed = ", ".join(f"'{path}'" for path in day_event_files(lake))
    stages = ", ".join(f"'{name}'" for name in FUNNEL_PAGE_VIEWS)
    start = f"TIMESTAMPTZ '{DAY.isoformat()} 00:00:00+00'"
    end = f"TIMESTAMPTZ '{(DAY + timedelta(days=1)).isoformat()} 00:00:00+00'"
    return listed, stages, start, end, "GROUPING SETS ((), (os), (region))"


def baseline_sql(lake: Path) -> str:
    """Per segment: active users, GMV (each order_id once) and the funnel page views of DAY."""
    listed, stages, start, end, segments = _day_sql_parts(lake)
    return f"""
        WITH events AS MATERIALIZED (
            SELECT event_name, user_id, os, region, success, order_id, amount
            FROM read_parquet([{listed}], hive_partitioning = false)
            WHERE event_time >= {start} AND event_time < {end}
              AND event_name IN ('app_launch', 'recharge_order', {stages})
        ),
        orders AS (
            SELECT order_id, any_value(os) AS os, any_value(region) AS region,
                   any_value(amount) AS amount
            FROM events WHERE event_name = 'recharge_order' GROUP BY order_id
        )
        SELECT 'active_users' AS metric, os, region, NULL AS stage,
               count(DISTINCT user_id)::DOUBLE AS value
        FROM events WHERE event_name = 'app_launch' AND success GROUP BY {segments}
        UNION ALL
        SELECT 'gmv', os, region, NULL, sum(amount)::DOUBLE FROM orders GROUP BY {segments}
        UNION ALL
        SELECT 'pv', os, region, event_name, count(*)::DOUBLE
        FROM events WHERE event_name IN ({stages})
        GROUP BY GROUPING SETS ((event_name), (event_name, os), (event_name, region))
    """


def _segment_rows(query: str) -> tuple[int, dict[tuple[str, str | None], float]]:
    """Run a script's query (rows of metric, os, region, stage, value): the segments it answered,
    and the values of segment ``all`` by (metric, stage)."""
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    rows = connection.execute(query).fetchall()
    segments = {
        "all" if o is None and r is None else f"os:{o}" if o else f"region:{r}" for _, o, r, _, _ in rows
    }
    every = {(metric, stage): value for metric, o, r, stage, value in rows if o is None and r is None}
    return len(segments), every


def scenario_baseline(lake: Path) -> dict:
    segments, every = _segment_rows(baseline_sql(lake))
    return {
        "segments": segments,
        "active_users": int(every[("active_users", None)]),
        "gmv": round(every[("gmv", None)], 2),
        "exposure_pv": int(every[("pv", "entrance_exposure")]),
    }


def core_sql(lake: Path) -> str:
    """Per segment, DAY's core metrics from its events alone, counted as the product counts them:
    each event_id once (its first-received copy), each order_id once per order event name; active
    users and visits (successful launches), paying users, recharge orders and GMV, redeem orders,
    the funnel's page views. The metrics that need the history (new and total users, retention,
    LTV) are left out: the engine reads them from its state, a script would read all history."""
    listed, stages, start, end, segments = _day_sql_parts(lake)
    return f"""
        WITH day AS MATERIALIZED (
            SELECT event_id, event_name, event_time, received_at, user_id, os, region, success,
                   order_id, amount
            FROM read_parquet([{listed}], hive_partitioning = false)
            WHERE event_time >= {start} AND event_time < {end}
        ),
        events AS MATERIALIZED (
            SELECT * FROM day
            QUALIFY row_number() OVER (
                PARTITION BY event_id ORDER BY received_at, event_time, event_name, user_id) = 1
        ),
        orders AS MATERIALIZED (
            SELECT * FROM events WHERE event_name IN ('recharge_order', 'redeem_order')
            QUALIFY row_number() OVER (
                PARTITION BY event_name, order_id ORDER BY received_at, event_time, event_id) = 1
        )
        SELECT 'active_users' AS metric, os, region, NULL AS stage,
               count(DISTINCT user_id)::DOUBLE AS value
        FROM events WHERE event_name = 'app_launch' AND success GROUP BY {segments}
        UNION ALL
        SELECT 'visit_count', os, region, NULL, count(*)::DOUBLE
        FROM events WHERE event_name = 'app_launch' AND success GROUP BY {segments}
        UNION ALL
        SELECT 'paying_users', os, region, NULL, count(DISTINCT user_id)::DOUBLE
        FROM orders WHERE event_name = 'recharge_order' GROUP BY {segments}
        UNION ALL
        SELECT 'recharge_orders', os, region, NULL, count(*)::DOUBLE
        FROM orders WHERE event_name = 'recharge_order' GROUP BY {segments}
        UNION ALL
        SELECT 'gmv', os, region, NULL, sum(amount)::DOUBLE
        FROM orders WHERE event_name = 'recharge_order' GROUP BY {segments}
        UNION ALL
        SELECT 'redeem_orders', os, region, NULL, count(*)::DOUBLE
        FROM orders WHERE event_name = 'redeem_order' GROUP BY {segments}
        UNION ALL
        SELECT 'pv', os, region, event_name, count(*)::DOUBLE
        FROM events WHERE event_name IN ({stages})
        GROUP BY GROUPING SETS ((event_name), (event_name, os), (event_name, region))
    """


CORE_CHECKED = ("active_users", "visit_count", "paying_users", "recharge_orders", "gmv", "redeem_orders")


def scenario_core(lake: Path) -> dict:
    segments, every = _segment_rows(core_sql(lake))
    result: dict = {"segments": segments}
    for name in CORE_CHECKED:
        value = every[(name, None)]
        result[name] = round(value, 2) if name == "gmv" else int(value)
    result["exposure_pv"] = int(every[("pv", "entrance_exposure")])
    return result


def _label(query: str) -> str:
    text = re.sub(r"\s+", " ", query).strip()
    text = re.sub(r"\[(?:'[^']*'(?:, )?)+\]", "[files]", text)
    text = re.sub(r"'/[^']*'", "'<file>'", text)
    return text[:100]


class _TimedConnection:
    """A DuckDB connection whose ``execute`` calls are timed (everything else is delegated)."""

    def __init__(self, real, log: list[tuple[str, float]]) -> None:
        self._real = real
        self._log = log

    def execute(self, query: str, *arguments):
        started = time.perf_counter()
        try:
            return self._real.execute(query, *arguments)
        finally:
            self._log.append((_label(query), time.perf_counter() - started))

    def __getattr__(self, name: str):
        return getattr(self._real, name)


def scenario_profile(lake: Path) -> dict:
    """DAY's compute in process, with the engine's steps (inclusive times) and SQL statements timed."""
    import minidrama.metrics as metrics
    from minidrama.config import AppConfig
    from minidrama.lake import LocalStorage
    from minidrama.metrics import engine

    steps: dict[str, list[float]] = defaultdict(list)
    statements: list[tuple[str, float]] = []

    def timed(name: str, function):
        @functools.wraps(function)
        def wrapper(*arguments, **keywords):
            started = time.perf_counter()
            try:
                return function(*arguments, **keywords)
            finally:
                steps[name].append(time.perf_counter() - started)

        return wrapper

    session_steps = (
        "document",
        "_load_day",
        "_event_files",
        "_store_facts",
        "_rollup",
        "_fresh_facts",
        "_load_state",
        "_store_rollup",
        "_build_facts",
        "_write_public_facts",
        "_put_parquet",
        "_intact",
        "save_index",
    )
    for name in session_steps:
        setattr(engine.MetricsSession, name, timed(name, getattr(engine.MetricsSession, name)))
    engine.run_definitions = timed("run_definitions", engine.run_definitions)
    engine.build_document = timed("build_document", engine.build_document)
    metrics.write_calendar_documents = timed("write_calendar_documents", metrics.write_calendar_documents)
    real_connect = engine.connect
    engine.connect = lambda: _TimedConnection(real_connect(), statements)

    started = time.perf_counter()
    metrics.compute_days(LocalStorage(lake), AppConfig(APP), [DAY])
    total = time.perf_counter() - started
    by_statement: dict[str, list[float]] = defaultdict(list)
    for label, seconds in statements:
        by_statement[label].append(seconds)
    top = sorted(by_statement.items(), key=lambda item: -sum(item[1]))[:15]
    return {
        "compute_days_seconds": round(total, 3),
        "sql_seconds": round(sum(seconds for _, seconds in statements), 3),
        "statements": len(statements),
        "steps": {name: [round(sum(times), 3), len(times)] for name, times in steps.items()},
        "top_statements": [[label, round(sum(times), 3), len(times)] for label, times in top],
    }


SCENARIOS = {"baseline": scenario_baseline, "core": scenario_core, "profile": scenario_profile}


# --- the report -----------------------------------------------------------------------------------


def _json_line(sample: Sample) -> dict:
    return json.loads(sample.output.strip().splitlines()[-1])


def _document_numbers(lake: Path) -> dict:
    """What the baseline computes too (segment all), and the users the engine knows, from DAY's document."""
    path = lake / "metrics" / f"app_id={APP}" / f"dt={DAY.isoformat()}" / "metrics.json"
    every = json.loads(path.read_text())["segments"]["all"]
    orders = every["iap_orders"]["all"]
    return {
        "active_users": every["dashboard"]["active_users"],
        "visit_count": every["behavior"]["visit_count"],
        "paying_users": every["iap_users"]["paying_users"],
        "recharge_orders": orders["recharge_orders"],
        "gmv": orders["gmv"],
        "redeem_orders": orders["redeem_orders"],
        "exposure_pv": every["funnel"]["recharge"][0]["pv"],
        "total_users": every["dashboard"]["total_users"],
    }


def measure_size(args: argparse.Namespace, size: float, record: dict, workdir: Path) -> dict:
    """The steady state of one size, then its alternating compute and baseline runs."""
    lake = workdir / _key(size)
    record_path = workdir / f"{_key(size)}.json"
    scratch = workdir / "tmp"
    if "history_compute_seconds" not in record:
        print(f"  {size:g} M: computing the {HISTORY_DAYS} history days ...", flush=True)
        history = run_child(compute_command(lake, FIRST, DAY - timedelta(days=1)), scratch, args.timeout * 10)
        record |= {
            "history_compute_seconds": round(history.seconds, 1),
            "history_compute_peak_mb": round(history.rss_mb),
        }
        record_path.write_text(json.dumps(record))
        print(f"  {size:g} M: history computed in {history.seconds:.0f} s", flush=True)
    warm = run_child(compute_command(lake, DAY, DAY), scratch, args.timeout, args.lambda_mb)
    warm_baseline = run_child(child_command("baseline", lake), scratch, args.timeout)
    warm_core = run_child(child_command("core", lake), scratch, args.timeout)
    print(
        f"  {size:g} M: warm-up compute {warm.seconds:.1f} s, baseline {warm_baseline.seconds:.1f} s,"
        f" core {warm_core.seconds:.1f} s",
        flush=True,
    )
    runs = args.runs or (1 if size >= BIG_SIZE else 3)
    computes: list[Sample] = []
    baselines: list[Sample] = []
    cores: list[Sample] = []
    for run in range(runs):
        order = [("compute", computes), ("baseline", baselines), ("core", cores)]
        for label, samples in order[run % 3 :] + order[: run % 3]:  # each first in turn
            if label == "compute":
                sample = run_child(compute_command(lake, DAY, DAY), scratch, args.timeout, args.lambda_mb)
            else:
                sample = run_child(child_command(label, lake), scratch, args.timeout)
            samples.append(sample)
            print(
                f"  {size:g} M run {run + 1}/{runs} {label:8} {sample.seconds:7.2f} s"
                f"  {sample.rss_mb:6.0f} MB RSS  {sample.tmp_mb:7.1f} MB tmp"
                f"  {sample.cpu_seconds:7.1f} s CPU",
                flush=True,
            )
    files = day_event_files(lake)
    result = {
        "size": size,
        "runs": runs,
        "events": record["day_events"],
        "event_bytes": sum(path.stat().st_size for path in files),
        "event_files": len(files),
        "state_read_bytes": state_read_bytes(lake),
        "document": _document_numbers(lake),
        "compute": computes,
        "baseline": baselines,
        "baseline_result": _json_line(baselines[0]),
        "core": cores,
        "core_result": _json_line(cores[0]),
        "record": record,
    }
    if args.profile:
        profiled = run_child(child_command("profile", lake), scratch, args.timeout)
        result["profile"] = (profiled.seconds, _json_line(profiled))
    return result


def _median(samples: list[Sample], field: str) -> float:
    return statistics.median(getattr(sample, field) for sample in samples)


def print_report(results: list[dict], args: argparse.Namespace) -> None:
    print(
        f"\nDAY {DAY}, {HISTORY_DAYS} days of history scaled with the size; median of the runs, each in a"
        f" fresh process; {os.cpu_count()} cores"
        + (f"; compute as on a {args.lambda_mb} MB Lambda" if args.lambda_mb else "")
    )
    print(
        "\n| events/day | active users | events Parquet (MB, B/event) | compute s | peak RSS MB"
        " | peak /tmp MB | core subset s | compute / core | 3-metric baseline s | compute / 3-metric |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for result in results:
        compute_s = _median(result["compute"], "seconds")
        baseline_s = _median(result["baseline"], "seconds")
        core_s = _median(result["core"], "seconds")
        print(
            f"| {result['events']:,} | {result['document']['active_users']:,}"
            f" | {result['event_bytes'] / 2**20:.1f} MB, {result['event_bytes'] / result['events']:.1f} B"
            f" | {compute_s:.2f} | {_median(result['compute'], 'rss_mb'):.0f}"
            f" | {_median(result['compute'], 'tmp_mb'):.1f} | {core_s:.2f} | {compute_s / core_s:.2f}"
            f" | {baseline_s:.2f} | {compute_s / baseline_s:.1f} |"
        )
    print()
    for result in results:
        size, record = f"{result['size']:g} M", result["record"]
        computes, baselines = result["compute"], result["baseline"]
        print(
            f"{size}: runs: {result['runs']}; compute {[round(s.seconds, 2) for s in computes]} s,"
            f" RSS {[round(s.rss_mb) for s in computes]} MB,"
            f" /tmp {[round(s.tmp_mb, 1) for s in computes]} MB,"
            f" CPU {_median(computes, 'cpu_seconds'):.1f} s;"
            f" baseline {[round(s.seconds, 2) for s in baselines]} s,"
            f" RSS {_median(baselines, 'rss_mb'):.0f} MB, CPU {_median(baselines, 'cpu_seconds'):.1f} s"
        )
        cores = result["core"]
        print(
            f"{size}: core subset {[round(s.seconds, 2) for s in cores]} s,"
            f" RSS {_median(cores, 'rss_mb'):.0f} MB, CPU {_median(cores, 'cpu_seconds'):.1f} s"
        )
        core, document = result["core_result"], result["document"]
        agree = all(abs(core[name] - document[name]) < 0.005 for name in (*CORE_CHECKED, "exposure_pv"))
        print(
            f"{size}: core subset {core}: {'agrees with' if agree else 'DIFFERS from'} the document's"
            f" { ({name: document[name] for name in (*CORE_CHECKED, 'exposure_pv')}) }"
        )
        baseline = result["baseline_result"]
        checked = ("active_users", "gmv", "exposure_pv")
        agree = all(abs(baseline[name] - document[name]) < 0.005 for name in checked)
        print(
            f"{size}: baseline {baseline}; {', '.join(checked)}"
            f" {'agree with' if agree else 'DIFFER from'} the document's"
            f" ({', '.join(str(document[name]) for name in checked)});"
            f" {result['event_files']} events files; {document['total_users']:,} users known"
        )
        on_s3 = result["event_bytes"] + result["state_read_bytes"]
        print(
            f"{size}: on an S3 lake /tmp would hold also the downloaded events files and the state"
            f" read ({result['state_read_bytes'] / 2**20:.1f} MB): peak /tmp about"
            f" {_median(computes, 'tmp_mb') + on_s3 / 2**20:.0f} MB"
        )
        print(
            f"{size}: lake generated in {record['generate_seconds']:.0f} s,"
            f" its {HISTORY_DAYS} history days computed in {record['history_compute_seconds']:.0f} s"
            f" (peak {record['history_compute_peak_mb']} MB)"
        )
        if "profile" in result:
            seconds, profile = result["profile"]
            print(
                f"{size}: profile (in process, one run, {seconds:.1f} s with imports): compute_days"
                f" {profile['compute_days_seconds']:.2f} s, of which {profile['sql_seconds']:.2f} s in"
                f" {profile['statements']} DuckDB statements; steps (inclusive s, calls):"
            )
            for name, (total, calls) in sorted(profile["steps"].items(), key=lambda item: -item[1][0]):
                print(f"    {name:26} {total:8.2f}  x{calls}")
            print(f"{size}: slowest statements (s, calls):")
            for label, total, calls in profile["top_statements"]:
                print(f"    {total:8.2f}  x{calls:<3} {label}")
    example = compute_command(args.workdir.resolve() / _key(results[0]["size"]), DAY, DAY)
    print(f"\ncompute child: TMPDIR=HOME=cwd=<fresh dir> {shlex.join(example)}")
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1,5,20", help="millions of events on the day, e.g. 1,5,20")
    parser.add_argument("--runs", type=int, help=f"runs per size (default 3; 1 from {BIG_SIZE} M)")
    parser.add_argument("--workdir", type=Path, default=Path("/work/bench-data/ceiling"))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes generating lakes")
    parser.add_argument("--lambda-mb", type=int, default=0, help="compute as on a Lambda of this memory")
    parser.add_argument("--profile", action="store_true", help="one more, profiled, compute per size")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds a measured child may run")
    parser.add_argument("--child")
    parser.add_argument("--lake", type=Path)
    args = parser.parse_args()
    if args.child:
        metrics_bench.print_child_result(SCENARIOS[args.child], args.lake)
        return

    sizes = [float(text) for text in args.sizes.split(",")]
    args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir.resolve()
    print(f"{os.cpu_count()} cores, {_available_mb() / 1024:.1f} GB available; workdir {workdir}", flush=True)
    records = ensure_lakes(workdir, sizes, args.jobs)
    results = []
    for size in sizes:
        try:
            results.append(measure_size(args, size, records[size], workdir))
        except ChildTimeout as error:
            print(f"  {size:g} M: {error}; not in the table", flush=True)
    if results:
        print_report(results, args)


if __name__ == "__main__":
    main()
