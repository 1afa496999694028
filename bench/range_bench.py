"""Benchmark of range documents from the stored facts (issue 7, "Speed and size").

Measured, each in a fresh process (wall time with interpreter start and imports, and the child's
peak RSS; median of --runs):

  range    (1a) the 61-day range document (first history day .. DAY), all segments, by
           ``query_range`` over the lake of bench/metrics_bench.py (60 days of history + the heavy
           day of ~1 M events) with every day computed by ``compute_days``;
           (1b) a baseline: one DuckDB query over the raw event Parquet files of the same 61 days
           (only the columns it needs, nothing deduplicated) for active users, GMV and funnel
           page views per segment; and the ratio (1a)/(1b). Targets: <= 1 s, <= 1/5 of (1b).
  year     (2) the 365-day range document at 50,000 active users a day (a lighter generator:
           launches, session ends, some page views and orders; every day computed once and the
           lake cached in --workdir; building it takes about 5 min to generate and 30 min to
           compute on 2 cores). Targets: <= 5 s, <= 1.5 GB peak RSS. A run over 60 s is measured
           once (its warm-up run is the measurement).
  compute  (3) the daily compute of DAY (steady state: every earlier day computed, as scenario
           "full" of bench/metrics_bench.py) with this code and with the code before the facts
           (commit ca6ad4a, checked out in a git worktree and imported by PYTHONPATH), runs
           alternating; the ratio of the medians new/old. Target: <= 1.10. (3b) the span upkeep of
           DAY: the spans holding DAY dropped from the index and folded again from their halves, as
           when DAY is first computed (a steady-state recompute writes the same facts, its spans
           stay fresh: (3) holds only their check). (With --new-commit, DAY
           of the 61-day lake is computed once more by the installed code at the end, so later
           range and profile runs read the facts the installed code writes.)
  size     (4) bytes of the facts files of DAY (and of every day) against the bytes of the event
           files of the hour partitions covering them. Target: <= 30 %.
  profile  (not in the default set) where a range document's time goes: reading each facts table,
           each derived table and each query of every definition, timed one by one, with the peak
           RSS after each step; on the 61-day lake and, when built, the 365-day lake.

Usage:
  .venv/bin/python bench/range_bench.py [--runs 5] [--slow-runs 3] [--workdir bench/out/range]
      [--only range,year,compute,size,profile] [--timeout 900] [--jobs 2]
      [--baseline-commit ca6ad4a] [--baseline-dir /tmp/baseline] [--keep-baseline]
      [--new-commit REV] [--new-dir /tmp/range-bench-new]

Each part alone is one command, e.g. ``--only range``. The lakes (and the time it took to build
and compute them) are kept in --workdir and reused. ``compute`` adds the baseline worktree when it
is missing and removes it at the end unless --keep-baseline. "This code" is the installed package
(the working tree), or with --new-commit that commit in a worktree of its own (removed at the end
unless --keep-baseline): useful while the working tree is being edited. A child running over
--timeout seconds is killed and reported as such.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


sys.path.insert(0, str(HERE))
import metrics_bench  # noqa: E402  (bench/ is not a package)

DAY: date = metrics_bench.DAY
HISTORY_DAYS: int = metrics_bench.HISTORY_DAYS
FIRST = DAY - timedelta(days=HISTORY_DAYS)

# the 365-day lake: every day like a light history day, YEAR_ACTIVE active users each
YEAR_DAYS = 365
YEAR_FIRST = DAY - timedelta(days=YEAR_DAYS - 1)
YEAR_ACTIVE = 50_000
YEAR_NEW = 3_000  # first-time users a day; the rest return, drawn from every earlier user
YEAR_POOL = 100_000  # users known before the first day (their first launch is in the lake too)
YEAR_COMPUTE_CHUNK = 30  # days per compute_days call (a stopped build resumes at a chunk)
YEAR_PAGE_VIEWS = {  # per active user and day
    "entrance_exposure": 0.6,
    "entrance_click": 0.3,
    "minis_visit": 0.2,
    "last_free_episode_watch": 0.15,
    "third_party_payment_panel_show": 0.05,
    "third_party_payment_panel_click": 0.02,
    "tiktok_payment_panel_show": 0.05,
    "tiktok_payment_panel_click": 0.03,
}
YEAR_ORDERS = {"recharge_order": 0.1, "redeem_order": 0.05}  # per active user and day
AMOUNTS = tuple(Decimal(text) for text in ("0.99", "4.99", "9.99", "19.99"))
GENDERS = ("female", "male", None)
AGE_GROUPS = ("18-24", "25-34", "35-44")
BRANDS = ("apple", "samsung", "xiaomi", "oppo")

TARGETS = {"range": 1.0, "range_ratio": 1 / 5, "year": 5.0, "year_mb": 1536, "compute": 1.10, "size": 0.30}


def _app():
    from minidrama.config import AppConfig

    return AppConfig("bench")


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# --- the 365-day lake ----------------------------------------------------------------------------


def _user(number: int) -> tuple[str, str, str, int]:
    """A user's id, os and region (fixed per user), and a hash for their other attributes."""
    mixed = (number * 2654435761) & 0xFFFFFFFF
    regions = metrics_bench.REGIONS
    return f"u{number:07d}", metrics_bench.OSES[mixed & 1], regions[(mixed >> 1) % len(regions)], mixed


def generate_year_day(root: str, index: int) -> int:
    """Write day ``index`` of the 365-day lake (24 hour files); returns its number of events."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from minidrama.lake import LocalStorage, events_key
    from minidrama.writer import EVENTS_SCHEMA, table_to_parquet

    day = YEAR_FIRST + timedelta(days=index)
    rng = random.Random(f"year-{index}")
    known = YEAR_POOL + YEAR_NEW * index
    users = list(range(known, known + YEAR_NEW)) + rng.sample(range(known), YEAR_ACTIVE - YEAR_NEW)
    midnight = int(datetime.combine(day, datetime.min.time(), UTC).timestamp()) * 1_000_000
    received = midnight + 86_400 * 1_000_000 + 3_600 * 1_000_000
    second = 1_000_000
    kinds: dict[str, dict[str, list]] = {}

    def rows(kind: str, names: str) -> dict[str, list]:
        columns = kinds.setdefault(kind, {name: [] for name in ("event_id", *names.split())})
        return columns

    launch = rows(
        "app_launch",
        "event_time user_id session_id os region entry_point success launch_ms gender age_group"
        " device_brand device_model tiktok_version",
    )
    end = rows("session_end", "event_time user_id session_id os region duration_ms")
    view = rows("page_view", "event_name event_time user_id os region")
    order = rows("order", "event_name event_time user_id os region order_id amount product_id")
    sequence = 0
    entry_points = metrics_bench.ENTRY_POINTS
    for number in users:
        user_id, os_name, region, mixed = _user(number)
        moment = 0
        for _ in range(2 if rng.random() < 0.2 else 1):
            sequence += 1
            moment = midnight + rng.randrange(86_280) * second
            session = f"s{index}-{sequence}"
            success = rng.random() > 0.02
            launch["event_id"].append(f"y{index}-{sequence}")
            launch["event_time"].append(moment)
            launch["user_id"].append(user_id)
            launch["session_id"].append(session)
            launch["os"].append(os_name)
            launch["region"].append(region)
            launch["entry_point"].append(entry_points[rng.randrange(len(entry_points))])
            launch["success"].append(success)
            launch["launch_ms"].append(int(rng.lognormvariate(7, 0.4)))
            launch["gender"].append(GENDERS[mixed % 3])
            launch["age_group"].append(AGE_GROUPS[(mixed >> 3) % 3])
            launch["device_brand"].append(BRANDS[(mixed >> 5) % 4])
            launch["device_model"].append(f"model-{(mixed >> 7) % 40}")
            launch["tiktok_version"].append(f"3{(mixed >> 13) % 3}.{rng.randrange(9)}")
            if success:
                sequence += 1
                end["event_id"].append(f"y{index}-{sequence}")
                end["event_time"].append(moment + 60 * second)
                end["user_id"].append(user_id)
                end["session_id"].append(session)
                end["os"].append(os_name)
                end["region"].append(region)
                end["duration_ms"].append(int(rng.lognormvariate(12, 1.0)))
        for stage, mean in YEAR_PAGE_VIEWS.items():
            if rng.random() < mean:
                sequence += 1
                view["event_id"].append(f"y{index}-{sequence}")
                view["event_name"].append(stage)
                view["event_time"].append(moment + rng.randrange(1, 60) * second)
                view["user_id"].append(user_id)
                view["os"].append(os_name)
                view["region"].append(region)
        for name, mean in YEAR_ORDERS.items():
            if rng.random() < mean:
                sequence += 1
                order["event_id"].append(f"y{index}-{sequence}")
                order["event_name"].append(name)
                order["event_time"].append(moment + 30 * second)
                order["user_id"].append(user_id)
                order["os"].append(os_name)
                order["region"].append(region)
                order["order_id"].append(f"o{index}-{sequence}")
                order["amount"].append(AMOUNTS[rng.randrange(4)] if name == "recharge_order" else None)
                order["product_id"].append(f"drama-{rng.randrange(60)}-ep-{rng.randrange(80)}")
    tables = []
    for kind, columns in kinds.items():
        count = len(columns["event_id"])
        arrays = []
        for field in EVENTS_SCHEMA:
            if field.name in columns:
                arrays.append(pa.array(columns[field.name], type=field.type))
            elif field.name == "event_name":
                arrays.append(pa.array([kind] * count, type=field.type))
            elif field.name == "received_at":
                arrays.append(pa.array([received] * count, type=field.type))
            elif field.name == "properties":
                arrays.append(pa.array(["{}"] * count, type=field.type))
            elif field.name == "beans" and kind == "order":
                arrays.append(pa.array([100] * count, type=field.type))
            elif field.name in ("original_amount", "currency") and kind == "order":
                source = columns["amount"] if field.name == "original_amount" else None
                values = source if source is not None else ["USD" if a else None for a in columns["amount"]]
                arrays.append(pa.array(values, type=field.type))
            else:
                arrays.append(pa.nulls(count, type=field.type))
        tables.append(pa.Table.from_arrays(arrays, schema=EVENTS_SCHEMA))
    table = pa.concat_tables(tables)
    hours = pc.hour(table["event_time"])
    storage = LocalStorage(Path(root))
    for hour in range(24):
        part = table.filter(pc.equal(hours, hour))
        storage.put_bytes(events_key("bench", day, hour), table_to_parquet(part))
    return table.num_rows


def ensure_year_lake(workdir: Path, jobs: int) -> tuple[Path, dict]:
    """The 365-day lake, generated and computed once (resumable); returns it and its build record."""
    lake = workdir / "lake-365d"
    record_path = workdir / "lake-365d.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    if "generate_seconds" not in record:
        shutil.rmtree(lake, ignore_errors=True)
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            counts = list(pool.map(generate_year_day, [str(lake)] * YEAR_DAYS, range(YEAR_DAYS)))
        record = {"generate_seconds": round(time.perf_counter() - started, 1), "events": sum(counts)}
        record_path.write_text(json.dumps(record))
        print(f"generated {YEAR_DAYS} days, {sum(counts):,} events, in {record['generate_seconds']:.0f} s")
    chunks = record.setdefault("compute_chunks", {})
    days = _days(YEAR_FIRST, DAY)
    for start in range(0, YEAR_DAYS, YEAR_COMPUTE_CHUNK):
        first, last = days[start], days[min(start + YEAR_COMPUTE_CHUNK, YEAR_DAYS) - 1]
        if first.isoformat() in chunks:
            continue
        seconds, peak, _, _ = run_child("compute-all", lake, first, last)
        chunks[first.isoformat()] = {"last": last.isoformat(), "seconds": round(seconds, 1), "peak_mb": peak}
        record_path.write_text(json.dumps(record))
        print(f"  computed {first} .. {last} in {seconds:.0f} s (peak {peak:.0f} MB)", flush=True)
    record["compute_seconds"] = round(sum(chunk["seconds"] for chunk in chunks.values()), 1)
    record_path.write_text(json.dumps(record))
    ensure_spans(lake, record, record_path)
    return lake, record


# --- the 61-day lake of bench/metrics_bench.py -----------------------------------------------------


def ensure_lake(workdir: Path) -> tuple[Path, dict]:
    """metrics_bench's lake (60 days of history + DAY), every day computed with this code."""
    lake = workdir / "lake-61d"
    record_path = workdir / "lake-61d.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    if "day_events" not in record:
        shutil.rmtree(lake, ignore_errors=True)
        started = time.perf_counter()
        day_events = metrics_bench.generate_lake(lake, HISTORY_DAYS)
        record = {"day_events": day_events, "generate_seconds": round(time.perf_counter() - started, 1)}
        record_path.write_text(json.dumps(record))
        print(f"generated the {HISTORY_DAYS + 1}-day lake in {record['generate_seconds']:.0f} s")
    if "compute_seconds" not in record:
        seconds, peak, _, _ = run_child("compute-all", lake, FIRST, DAY)
        record |= {"compute_seconds": round(seconds, 1), "compute_peak_mb": peak}
        record_path.write_text(json.dumps(record))
        print(f"computed its {HISTORY_DAYS + 1} days in {seconds:.0f} s")
    ensure_spans(lake, record, record_path)
    return lake, record


def ensure_old_lake(workdir: Path, lake: Path, baseline: Path) -> Path:
    """The same events (hard links), every day computed by the baseline code."""
    old = workdir / "lake-61d-old"
    marker = old / "bench-computed.json"
    if not marker.exists():
        shutil.rmtree(old, ignore_errors=True)
        shutil.copytree(lake / "events", old / "events", copy_function=os.link)
        seconds, _, result, _ = run_child("compute-all", old, FIRST, DAY, pythonpath=baseline)
        marker.write_text(json.dumps({"compute_seconds": round(seconds, 1), **result}))
        print(f"computed the {HISTORY_DAYS + 1} days with the baseline code in {seconds:.0f} s")
    return old


def ensure_worktree(directory: Path, commit: str) -> bool:
    """A worktree of ``commit`` at ``directory``; True when this call added it."""
    if (directory / "layers" / "minidrama" / "minidrama").is_dir():
        head = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()
        wanted = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", commit], check=True, capture_output=True, text=True
        ).stdout.strip()
        if head != wanted:
            raise SystemExit(f"{directory} holds {head[:12]}, not {commit}; remove it or pick another dir")
        return False
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(directory), commit],
        check=True,
        capture_output=True,
    )
    return True


# --- the scenarios (run in a child process) -------------------------------------------------------


def scenario_compute_all(lake: Path, first: date, last: date) -> dict:
    import minidrama
    from minidrama.lake import LocalStorage
    from minidrama.metrics import compute_days

    keys = compute_days(LocalStorage(lake), _app(), _days(first, last))
    return {"documents": len(keys), "package": minidrama.__file__}


def scenario_compute_day(lake: Path, first: date, last: date) -> dict:
    """One day's compute in the daily steady state (as scenario "full" of metrics_bench)."""
    import minidrama
    from minidrama.lake import LocalStorage
    from minidrama.metrics import compute_days

    storage = LocalStorage(lake)
    compute_days(storage, _app(), [last])
    document = json.loads(storage.get_bytes(f"metrics/app_id=bench/dt={last.isoformat()}/metrics.json"))
    return {
        "active_users": document["segments"]["all"]["dashboard"]["active_users"],
        "package": str(Path(minidrama.__file__).parent.parent),
    }


def scenario_spans(lake: Path, first: date, last: date) -> dict:
    """Build the missing and stale span rollups (compute_days of no day). With ``first`` == ``last``
    the spans holding that day are dropped first: the upkeep of the day it completes its spans."""
    from minidrama.lake import LocalStorage
    from minidrama.metrics import compute_days, facts

    storage, app = LocalStorage(lake), _app()
    dropped = 0
    if first == last:
        index = facts.FactsIndex.load(storage, app.app_id, app.timezone)
        held = [span for span in index.spans if span.first <= first <= span.last]
        for span in held:
            del index.spans[span]
        dropped = len(held)
        storage.put_bytes(facts.facts_index_key(app.app_id), index.to_bytes(), "application/json")
    started = time.perf_counter()
    compute_days(storage, app, [])
    index = facts.FactsIndex.load(storage, app.app_id, app.timezone)
    return {
        "dropped": dropped,
        "spans": len(index.spans),
        "inner_seconds": round(time.perf_counter() - started, 3),
    }


def ensure_spans(lake: Path, record: dict, record_path: Path) -> None:
    """The lake's span rollups, built once (a lake computed before them has none)."""
    if "spans_seconds" not in record:
        seconds, peak, result, _ = run_child("spans", lake, FIRST, DAY)
        record |= {"spans_seconds": round(seconds, 1), "spans_peak_mb": peak, "spans": result["spans"]}
        record_path.write_text(json.dumps(record))
        # (a lake computed by code that keeps spans has them already: then this is their check)
        print(f"its {result['spans']} span rollups checked and the missing built in {seconds:.0f} s")


def scenario_range(lake: Path, first: date, last: date) -> dict:
    from minidrama.lake import LocalStorage
    from minidrama.metrics import query_range

    document = query_range(LocalStorage(lake), _app(), first, last)
    every = document["segments"]["all"]
    return {
        "segments": len(document["segments"]),
        "active_users": every["dashboard"]["active_users"],
        "gmv": every["iap_orders"]["all"]["gmv"],
        "exposure_pv": every["funnel"]["recharge"][0]["pv"],
    }


def raw_baseline_sql(lake: Path, first: date, last: date) -> str:
    """Active users, GMV and funnel page views per segment, straight from the event files."""
    from minidrama.schema import FUNNEL_PAGE_VIEWS

    files = sorted(
        str(path)
        for day in _days(first, last)
        for path in (lake / "events" / "app_id=bench" / f"dt={day.isoformat()}").glob("hour=*/*.parquet")
    )
    listed = ", ".join(f"'{path}'" for path in files)
    names = ", ".join(f"'{name}'" for name in ("app_launch", "recharge_order", *FUNNEL_PAGE_VIEWS))
    start = f"TIMESTAMPTZ '{first.isoformat()} 00:00:00+00'"
    end = f"TIMESTAMPTZ '{(last + timedelta(days=1)).isoformat()} 00:00:00+00'"
    return f"""
        SELECT os, region, event_name, count(*) AS events,
               count(DISTINCT user_id) FILTER (WHERE event_name = 'app_launch' AND success) AS active_users,
               sum(amount) FILTER (WHERE event_name = 'recharge_order') AS gmv
        FROM read_parquet([{listed}], hive_partitioning = false)
        WHERE event_time >= {start} AND event_time < {end} AND event_name IN ({names})
        GROUP BY GROUPING SETS ((event_name), (event_name, os), (event_name, region))
    """


def scenario_raw(lake: Path, first: date, last: date) -> dict:
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    rows = connection.execute(raw_baseline_sql(lake, first, last)).fetchall()
    segments = {
        "all" if os_name is None and region is None else f"os:{os_name}" if os_name else f"region:{region}"
        for os_name, region, *_ in rows
    }
    every = {
        name: (events, active, gmv)
        for os_name, region, name, events, active, gmv in rows
        if os_name is None and region is None
    }
    return {
        "segments": len(segments),
        "active_users": every["app_launch"][1],
        "gmv": float(every["recharge_order"][2]),
        "exposure_pv": every["entrance_exposure"][0],
    }


def scenario_profile(lake: Path, first: date, last: date) -> dict:
    """query_range's steps, one by one, with their times and the peak RSS after each."""
    import resource

    from minidrama.lake import LocalStorage
    from minidrama.metrics import facts, ranges
    from minidrama.metrics.definitions import DEFINITIONS, shared_relations
    from minidrama.metrics.document import build_document
    from minidrama.metrics.engine import connect
    from minidrama.metrics.period import Period

    steps: list[dict] = []
    clock = time.perf_counter()

    def step(name: str, **extra) -> None:
        nonlocal clock
        now = time.perf_counter()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        steps.append({"step": name, "seconds": round(now - clock, 3), "peak_mb": round(peak), **extra})
        clock = time.perf_counter()

    storage, app = LocalStorage(lake), _app()
    period = Period.range(first, last)
    index = facts.FactsIndex.load(storage, app.app_id, app.timezone)
    step("load index")
    connection = connect()
    connection.execute("SET preserve_insertion_order = false")  # as query_range
    workdir = Path(tempfile.mkdtemp(prefix="range-profile-"))
    results = {}
    rollup = ranges._rollup_plan(index, period)
    entries = ranges._facts_entries(index, period, rollup)
    paths = {}
    for table, listed in entries.items():
        paths |= ranges._verified_paths(storage, {table: listed}, workdir)  # as query_range
        step(f"verify {table}", mb=round(sum(path.stat().st_size for path in paths[table]) / 2**20, 1))
        # as query_range: a table scanned in place is a view, read by its query and not here
        ranges._bind_facts(connection, {table: paths[table]}, rolled_up=rollup is not None)
        count = None
        if table not in ranges._SCANNED_IN_PLACE and table in facts.ALL_TABLES:
            (count,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)
        step(f"read {table}", rows=count)
    for statement in ranges._DERIVED:
        connection.execute(statement)
        step("derive " + statement.split()[2])
    period = ranges._with_stored_retention(connection, period, list(entries))
    if rollup is not None:
        period = ranges._bind_users(connection, storage, index, period, rollup, paths, workdir)
        step(f"bind {len(rollup.spans)} spans and {len(rollup.days)} single days", spans=period.spans)
    step("check stored retention")
    for name, query in shared_relations(period).items():  # as run_definitions
        connection.execute(f"CREATE OR REPLACE TABLE {name} AS {query}")
        step(f"shared {name}")
    for definition in DEFINITIONS:
        for name, query in definition.queries(period).items():
            cursor = connection.execute(query)
            columns = [description[0] for description in cursor.description]
            fetched = [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]
            results[(definition.name, name)] = fetched
            step(f"query {definition.name}.{name}", rows=len(fetched))
    connection.close()
    shutil.rmtree(workdir, ignore_errors=True)
    build_document(
        app_id=app.app_id,
        period=period,
        timezone=app.timezone,
        currency=app.currency,
        generated_at=datetime.now(UTC),
        results=results,
    )
    step("build document")
    return {"steps": steps}


SCENARIOS = {
    "compute-all": scenario_compute_all,
    "compute-day": scenario_compute_day,
    "spans": scenario_spans,
    "range": scenario_range,
    "raw": scenario_raw,
    "profile": scenario_profile,
}


class ChildTimeout(Exception):
    pass


TIMEOUT = {"seconds": 900.0}  # per child; --timeout
SLOW_SECONDS = 60.0


NEW_CODE: dict[str, Path | None] = {"checkout": None}  # --new-commit: the code measured as "this code"


def run_child(
    scenario: str, lake: Path, first: date, last: date, pythonpath: Path | None = None
) -> tuple[float, float, dict, float]:
    """Run one scenario in a fresh process; returns (seconds, peak RSS MB, its result, CPU seconds).

    With ``pythonpath`` (a checkout of the repository) the child imports that code's package;
    without, the --new-commit checkout when there is one, else the installed (working tree) package.
    A child still running after ``TIMEOUT`` is killed (:class:`ChildTimeout`).
    """
    pythonpath = pythonpath or NEW_CODE["checkout"]
    environment = dict(os.environ)
    if pythonpath is not None:
        environment["PYTHONPATH"] = str(pythonpath / "layers" / "minidrama")
    command = [sys.executable, __file__, "--child", scenario, "--lake", str(lake)]
    command += ["--first", first.isoformat(), "--last", last.isoformat()]
    with tempfile.TemporaryFile("w+") as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, text=True, env=environment)
        timer = threading.Timer(TIMEOUT["seconds"], process.kill)
        timer.start()
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode == -signal.SIGKILL:
            raise ChildTimeout(f"{scenario} on {lake.name} ran over {TIMEOUT['seconds']:.0f} s")
        if status != 0:
            raise SystemExit(f"scenario {scenario} on {lake} failed")
        output.seek(0)
        result = json.loads(output.read().strip().splitlines()[-1])
        return elapsed, usage.ru_maxrss / 1024, result, usage.ru_utime + usage.ru_stime


def _restore_day(lake: Path) -> None:
    """DAY of ``lake`` computed again by the installed package (not the --new-commit checkout)."""
    checkout, NEW_CODE["checkout"] = NEW_CODE["checkout"], None
    try:
        run_child("compute-day", lake, DAY, DAY)
    finally:
        NEW_CODE["checkout"] = checkout


def measure(
    scenario: str, lake: Path, first: date, last: date, runs: int, pythonpath: Path | None = None
) -> tuple[float, float, dict, list[float]]:
    """Median seconds and peak RSS MB of ``runs`` runs, the first run's result, and every time."""
    samples = [run_child(scenario, lake, first, last, pythonpath) for _ in range(runs)]
    seconds = [sample[0] for sample in samples]
    return statistics.median(seconds), statistics.median(s[1] for s in samples), samples[0][2], seconds


# --- sizes ------------------------------------------------------------------------------------------


def facts_sizes(lake: Path) -> dict:
    """Bytes of the facts the index names, of DAY and of all days, and of the events under them."""
    from minidrama.lake import LocalStorage
    from minidrama.metrics.facts import FactsIndex
    from minidrama.metrics.window import day_window

    index = FactsIndex.load(LocalStorage(lake), "bench", "UTC")

    def event_bytes(day: date) -> int:
        total = 0
        for utc_date, hour in day_window(day, "UTC").hours:
            partition = lake / "events" / "app_id=bench" / f"dt={utc_date.isoformat()}" / f"hour={hour:02d}"
            total += sum(path.stat().st_size for path in partition.glob("*.parquet"))
        return total

    by_table: dict[str, int] = {}
    for entry_table, entry in index.days[DAY].items():
        by_table[entry_table] = entry.size
    all_facts = sum(entry.size for tables in index.days.values() for entry in tables.values())
    all_events = sum(event_bytes(day) for day in index.days)
    index_file = lake / "facts" / "_index" / "app_id=bench" / "index.json"
    return {
        "day_facts": sum(by_table.values()),
        "day_events": event_bytes(DAY),
        "day_by_table": by_table,
        "all_facts": all_facts,
        "all_events": all_events,
        "days": len(index.days),
        "index_bytes": index_file.stat().st_size,
    }


# --- the report -------------------------------------------------------------------------------------


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--slow-runs", type=int, default=3, help="runs of the 365-day range")
    parser.add_argument("--workdir", type=Path, default=Path("bench/out/range"))
    parser.add_argument("--only", default="range,year,compute,size")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes generating days")
    parser.add_argument("--baseline-commit", default="ca6ad4a")
    parser.add_argument("--baseline-dir", type=Path, default=Path("/tmp/baseline"))
    parser.add_argument("--keep-baseline", action="store_true")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds a child may run")
    parser.add_argument(
        "--new-commit", help="measure this commit (a worktree at --new-dir) instead of the working tree"
    )
    parser.add_argument("--new-dir", type=Path, default=Path("/tmp/range-bench-new"))
    parser.add_argument("--child")
    parser.add_argument("--lake", type=Path)
    parser.add_argument("--first", type=date.fromisoformat)
    parser.add_argument("--last", type=date.fromisoformat)
    args = parser.parse_args()
    if args.child:
        metrics_bench.print_child_result(SCENARIOS[args.child], args.lake, args.first, args.last)
        return

    TIMEOUT["seconds"] = args.timeout
    new_added = False
    if args.new_commit:
        new_added = ensure_worktree(args.new_dir, args.new_commit)
        NEW_CODE["checkout"] = args.new_dir
    try:
        report(args)
    finally:
        if new_added and not args.keep_baseline:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(args.new_dir)], check=True
            )


def _git(*arguments: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *arguments], check=True, capture_output=True, text=True
    ).stdout


def _described(args: argparse.Namespace) -> str:
    if NEW_CODE["checkout"]:
        return f"commit {_git('rev-parse', '--short', args.new_commit).strip()} (worktree {args.new_dir})"
    changed = _git("status", "--porcelain", "--untracked-files=no", "--", "layers").strip()
    head = _git("rev-parse", "--short", "HEAD").strip()
    return f"the working tree at {head}" + (" with uncommitted changes under layers/" if changed else "")


def report(args: argparse.Namespace) -> None:
    """Measure the parts of ``--only`` and print the table."""
    parts = set(args.only.split(","))
    args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir.resolve()
    table: list[tuple[str, str, str, str]] = []  # (measurement, value, peak RSS, target)
    notes: list[str] = []
    lake, record = ensure_lake(workdir) if parts & {"range", "compute", "size", "profile"} else (None, {})
    print(f"this code: {_described(args)}; before: commit {args.baseline_commit}")
    print(
        f"median of {args.runs} runs (365-day range: {args.slow_runs}), each in a fresh process;"
        f" {os.cpu_count()} cores",
        flush=True,
    )

    if "range" in parts and lake:
        run_child("range", lake, FIRST, DAY)  # warm the page cache for both
        run_child("raw", lake, FIRST, DAY)
        ranged = measure("range", lake, FIRST, DAY, args.runs)
        raw = measure("raw", lake, FIRST, DAY, args.runs)
        share = ranged[0] / raw[0]
        table.append(
            (
                f"(1a) {HISTORY_DAYS + 1}-day range document, query_range",
                f"{ranged[0]:.2f} s",
                f"{ranged[1]:.0f} MB",
                f"<= {TARGETS['range']:.0f} s",
            )
        )
        table.append(("(1b) baseline: DuckDB over the raw events", f"{raw[0]:.2f} s", f"{raw[1]:.0f} MB", ""))
        table.append(("     (1a) / (1b)", f"{share:.2f}", "", f"<= {TARGETS['range_ratio']:.2f}"))
        notes.append(f"(1a) runs {[round(s, 2) for s in ranged[3]]}; last line of a child: {ranged[2]}")
        notes.append(f"(1b) runs {[round(s, 2) for s in raw[3]]}; last line of a child: {raw[2]}")

    if "year" in parts:
        year_lake, year = ensure_year_lake(workdir, args.jobs)
        label = f"(2)  {YEAR_DAYS}-day range, {YEAR_ACTIVE:,} active users a day"
        target = f"<= {TARGETS['year']:.0f} s, <= {TARGETS['year_mb'] / 1024:.1f} GB"
        try:
            warm = run_child("range", year_lake, YEAR_FIRST, DAY)
            if warm[0] > SLOW_SECONDS:  # minutes a run: the first run is the measurement
                ranged = (warm[0], warm[1], warm[2], [warm[0]])
                notes.append(f"(2) one run only: it took over {SLOW_SECONDS:.0f} s")
            else:
                ranged = measure("range", year_lake, YEAR_FIRST, DAY, args.slow_runs)
            table.append((label, f"{ranged[0]:.2f} s", f"{ranged[1]:.0f} MB", target))
            notes.append(f"(2) runs {[round(s, 2) for s in ranged[3]]}; last line of a child: {ranged[2]}")
        except ChildTimeout as error:
            table.append((label, f"> {args.timeout:.0f} s", "killed", target))
            notes.append(f"(2) {error}")
        notes.append(
            f"(2) lake: {year['events']:,} events generated in {year['generate_seconds']:.0f} s"
            f" ({args.jobs} processes); compute_days of its {YEAR_DAYS} days took"
            f" {year['compute_seconds']:.0f} s"
            f" (in chunks of {YEAR_COMPUTE_CHUNK} days, week and month documents included)"
        )

    if "compute" in parts and lake:
        added = ensure_worktree(args.baseline_dir, args.baseline_commit)
        try:
            old_lake = ensure_old_lake(workdir, lake, args.baseline_dir)
            _, _, new_info, _ = run_child("compute-day", lake, DAY, DAY)  # the steady state of each
            _, _, old_info, _ = run_child("compute-day", old_lake, DAY, DAY, args.baseline_dir)
            if new_info["package"] == old_info["package"]:
                raise SystemExit(f"both runs imported {new_info['package']}")
            new_runs, old_runs = [], []
            for run in range(args.runs):
                order = [("new", lake, None), ("old", old_lake, args.baseline_dir)]
                for label, where, path in order if run % 2 == 0 else order[::-1]:
                    sample = run_child("compute-day", where, DAY, DAY, path)
                    (new_runs if label == "new" else old_runs).append(sample)
        finally:
            if added and not args.keep_baseline:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force", str(args.baseline_dir)],
                    check=True,
                )
            if NEW_CODE["checkout"]:
                # DAY of the shared lake was just computed by the --new-commit code: compute it again
                # with the installed code, so that the range and profile runs read the facts it writes
                _restore_day(lake)
        new_s = statistics.median(s[0] for s in new_runs)
        old_s = statistics.median(s[0] for s in old_runs)
        pairs = statistics.median(n[0] / o[0] for n, o in zip(new_runs, old_runs, strict=True))
        table.append(
            (
                f"(3)  compute of DAY, {args.baseline_commit} (before)",
                f"{old_s:.2f} s",
                f"{statistics.median(s[1] for s in old_runs):.0f} MB",
                "",
            )
        )
        table.append(
            (
                "(3)  compute of DAY, this code (after)",
                f"{new_s:.2f} s",
                f"{statistics.median(s[1] for s in new_runs):.0f} MB",
                "",
            )
        )
        table.append(("     after / before", f"{new_s / old_s:.2f}", "", f"<= {TARGETS['compute']:.2f}"))
        new_cpu = statistics.median(s[3] for s in new_runs)
        old_cpu = statistics.median(s[3] for s in old_runs)
        table.append(("     after / before, CPU seconds (user + sys)", f"{new_cpu / old_cpu:.2f}", "", ""))
        notes.append(f"(3) CPU seconds of a child: before {old_cpu:.2f}, after {new_cpu:.2f}")
        notes.append(f"(3) before: runs {[round(s[0], 2) for s in old_runs]}, package {old_info['package']}")
        notes.append(f"(3) after:  runs {[round(s[0], 2) for s in new_runs]}, package {new_info['package']}")
        notes.append(f"(3) median of the per-pair ratios after/before: {pairs:.2f}")
        # The steady-state recompute of DAY writes the same facts: its spans stay fresh. The day's
        # first compute also folds the spans it completes (DAY ends spans of 2 to 32 days here).
        upkeep = [run_child("spans", lake, DAY, DAY) for _ in range(args.runs)]
        upkeep_s = statistics.median(sample[0] for sample in upkeep)
        table.append(
            (
                f"(3b) span upkeep of DAY ({upkeep[0][2]['dropped']} spans folded), not in (3)",
                f"{upkeep_s:.2f} s",
                f"{statistics.median(sample[1] for sample in upkeep):.0f} MB",
                "",
            )
        )
        table.append(("     (after + upkeep) / before", f"{(new_s + upkeep_s) / old_s:.2f}", "", ""))
        notes.append(f"(3b) runs {[round(sample[0], 2) for sample in upkeep]}")

    if "size" in parts and lake:
        for label, where in (("61-day lake", lake), ("365-day lake", workdir / "lake-365d")):
            if not (where / "facts" / "_index").exists():
                continue
            sizes = facts_sizes(where)
            table.append(
                (
                    f"(4)  facts / events of DAY, {label}",
                    f"{100 * sizes['day_facts'] / sizes['day_events']:.1f} %",
                    f"{_mb(sizes['day_facts'])} / {_mb(sizes['day_events'])}",
                    f"<= {100 * TARGETS['size']:.0f} %",
                )
            )
            table.append(
                (
                    f"(4)  facts / events of all {sizes['days']} days, {label}",
                    f"{100 * sizes['all_facts'] / sizes['all_events']:.1f} %",
                    f"{_mb(sizes['all_facts'])} / {_mb(sizes['all_events'])}",
                    f"<= {100 * TARGETS['size']:.0f} %",
                )
            )
            by_table = ", ".join(
                f"{name} {_mb(size)}" for name, size in sorted(sizes["day_by_table"].items())
            )
            notes.append(
                f"(4) {label}, facts of DAY by table: {by_table}; index.json {_mb(sizes['index_bytes'])}"
            )

    if "profile" in parts:
        targets = [("61-day lake", lake, FIRST)] if lake else []
        if (workdir / "lake-365d" / "facts" / "_index").exists():
            targets.append(("365-day lake", workdir / "lake-365d", YEAR_FIRST))
        for label, where, first in targets:
            seconds, peak, result, _ = run_child("profile", where, first, DAY)
            print(f"\nprofile of the range document, {label} ({seconds:.2f} s, peak {peak:.0f} MB):")
            for entry in result["steps"]:
                extra = {k: v for k, v in entry.items() if k not in ("step", "seconds", "peak_mb")}
                print(
                    f"  {entry['step']:44} {entry['seconds']:7.3f} s"
                    f"  peak {entry['peak_mb']:6} MB  {extra or ''}"
                )

    if record:
        notes.append(
            f"61-day lake: DAY has {record['day_events']:,} events;"
            f" generated in {record['generate_seconds']:.0f} s,"
            f" its {HISTORY_DAYS + 1} days computed in {record['compute_seconds']:.0f} s"
        )
    if table:
        width = max(len(row[0]) for row in table)
        print(f"\n{'measurement':{width}}  {'median':>9}  {'peak RSS / sizes':>22}  target")
        for name, value, peak, target in table:
            print(f"{name:{width}}  {value:>9}  {peak:>22}  {target}")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
