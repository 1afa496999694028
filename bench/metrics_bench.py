"""Benchmark of the metrics engine on simulated data.

One day of about 1,000,000 events (about 50,000 active users) with 60 days of history
(about 50,000 launches and 5,000 orders a day), written as hourly Parquet files like the
writer's. Measured, each in a fresh process (time and peak RSS, median of --runs):

  (a) read   reading only the columns the metrics need of the day's files into Arrow (pyarrow)
  (b) full   the full metrics document, every segment, day facts of the history already built
             (the daily steady state)
  (c) naive  a baseline: one query per metric per segment over the raw events, history included
  (d) the full document again on a lake with 7 days of history instead of 60

Usage: .venv/bin/python bench/metrics_bench.py [--runs 3] [--skip-naive] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

DAY = date(2026, 11, 10)
ACTIVE_USERS = 50_000
HISTORY_DAYS = 60
NEW_USERS_PER_DAY = 3_000
OSES = ("ios", "android")
REGIONS = ("US", "GB", "PH", "ID", "BR", "MX", "DE", "FR", "JP", "KR")
ENTRY_POINTS = ("feed", "search", "profile_page", "share_link", "ads", "notification")
# page views per active user on the day (mean) for each funnel stage
PAGE_VIEWS = {
    "entrance_exposure": 6.0,
    "entrance_click": 3.0,
    "minis_visit": 3.0,
    "last_free_episode_watch": 2.0,
    "third_party_payment_panel_show": 0.5,
    "third_party_payment_panel_click": 0.2,
    "tiktok_payment_panel_show": 0.5,
    "tiktok_payment_panel_click": 0.3,
}


def _count(rng: random.Random, mean: float) -> int:
    whole = int(mean)
    return whole + (1 if rng.random() < mean - whole else 0)


class Columns:
    """Column lists of one hour partition, in the writer's schema."""

    def __init__(self) -> None:
        from minidrama.schema import EVENT_COLUMNS

        self.names = [name for name, _ in EVENT_COLUMNS]
        self.data: dict[str, list] = {name: [] for name in self.names}

    def add(self, **values) -> None:
        for name in self.names:
            self.data[name].append(values.get(name))


def generate_lake(root: Path, history_days: int, seed: int = 1) -> int:
    """Write the simulated lake; returns the number of events on the measured day."""
    import pyarrow as pa

    from minidrama.lake import LocalStorage, events_key
    from minidrama.writer import EVENTS_SCHEMA, table_to_parquet

    storage = LocalStorage(root)
    rng = random.Random(seed)
    users: list[tuple[str, str, str]] = []  # (user_id, os, region), in order of arrival
    received = datetime.combine(DAY + timedelta(days=1), datetime.min.time(), UTC)
    sequence = 0
    day_events = 0

    def user_pool(day_index: int) -> list[tuple[str, str, str]]:
        for _ in range(NEW_USERS_PER_DAY):
            users.append((f"user-{len(users):07d}", rng.choice(OSES), rng.choice(REGIONS)))
        new = users[-NEW_USERS_PER_DAY:]
        returning = rng.sample(
            users[:-NEW_USERS_PER_DAY], min(ACTIVE_USERS - len(new), len(users) - len(new))
        )
        return new + returning

    # a pool of earlier users so that the first history day already has returning users
    for _ in range(ACTIVE_USERS * 2):
        users.append((f"user-{len(users):07d}", rng.choice(OSES), rng.choice(REGIONS)))

    days = [DAY - timedelta(days=n) for n in range(history_days, -1, -1)]
    for day_index, day in enumerate(days):
        hours: dict[int, Columns] = {}
        full_day = day == DAY
        for user_id, os_name, region in user_pool(day_index):
            launches = 1 + (_count(rng, 1.0) if full_day else 0)
            for _ in range(launches):
                sequence += 1
                moment = datetime.combine(day, datetime.min.time(), UTC) + timedelta(
                    seconds=rng.randrange(86_400)
                )
                session = f"s{sequence}"
                hour = hours.setdefault(moment.hour, Columns())
                common = {"user_id": user_id, "os": os_name, "region": region, "received_at": received}
                hour.add(
                    event_id=f"e{sequence}",
                    event_name="app_launch",
                    event_time=moment,
                    session_id=session,
                    entry_point=rng.choice(ENTRY_POINTS),
                    success=rng.random() > 0.02,
                    launch_ms=int(rng.lognormvariate(7, 0.4)),
                    gender=rng.choice(("female", "male", None)),
                    age_group=rng.choice(("18-24", "25-34", "35-44")),
                    device_brand=rng.choice(("apple", "samsung", "xiaomi", "oppo")),
                    device_model=f"model-{rng.randrange(40)}",
                    tiktok_version=f"3{rng.randrange(3)}.{rng.randrange(9)}",
                    properties="{}",
                    **common,
                )
                if full_day:
                    sequence += 1
                    hour.add(
                        event_id=f"e{sequence}",
                        event_name="session_end",
                        event_time=moment + timedelta(seconds=60),
                        session_id=session,
                        duration_ms=int(rng.lognormvariate(12, 1.0)),
                        properties="{}",
                        **common,
                    )
                    for stage, mean in PAGE_VIEWS.items():
                        for _ in range(_count(rng, mean / launches)):
                            sequence += 1
                            hour.add(
                                event_id=f"e{sequence}",
                                event_name=stage,
                                event_time=moment + timedelta(seconds=rng.randrange(1, 60)),
                                properties="{}",
                                **common,
                            )
                for name, mean in (("recharge_order", 0.1), ("redeem_order", 0.3 if full_day else 0.0)):
                    for _ in range(_count(rng, mean / launches)):
                        sequence += 1
                        amount = Decimal(rng.choice(("0.99", "4.99", "9.99", "19.99")))
                        hour.add(
                            event_id=f"e{sequence}",
                            event_name=name,
                            event_time=moment + timedelta(seconds=30),
                            order_id=f"o{sequence}",
                            amount=amount if name == "recharge_order" else None,
                            original_amount=amount if name == "recharge_order" else None,
                            currency="USD" if name == "recharge_order" else None,
                            beans=100,
                            product_id=f"drama-{rng.randrange(60)}-ep-{rng.randrange(80)}",
                            properties="{}",
                            **common,
                        )
        for hour_number, columns in hours.items():
            table = pa.Table.from_pydict(columns.data, schema=EVENTS_SCHEMA)
            storage.put_bytes(events_key("bench", day, hour_number), table_to_parquet(table))
            if full_day:
                day_events += table.num_rows
    return day_events


def _app():
    from minidrama.config import AppConfig

    return AppConfig("bench")


def scenario_read(lake: Path) -> dict:
    import pyarrow.parquet as pq

    from minidrama.lake import LocalStorage
    from minidrama.metrics.engine import MetricsSession
    from minidrama.metrics.sql import DAY_EVENT_COLUMNS

    with MetricsSession.open(LocalStorage(lake), _app()) as session:
        paths = [str(session.storage.path(info.key)) for info in session.day_files(DAY)]
    table = pq.read_table(paths, columns=list(DAY_EVENT_COLUMNS))
    return {"rows": table.num_rows}


def scenario_full(lake: Path) -> dict:
    from minidrama.lake import LocalStorage
    from minidrama.metrics import compute_days

    storage = LocalStorage(lake)
    compute_days(storage, _app(), [DAY])
    document = json.loads(storage.get_bytes(f"metrics/app_id=bench/dt={DAY.isoformat()}/metrics.json"))
    return {
        "segments": len(document["segments"]),
        "active_users": document["segments"]["all"]["dashboard"]["active_users"],
    }


def scenario_naive(lake: Path) -> dict:
    """One query per metric per segment, straight over the raw events (history included)."""
    import duckdb

    events = f"read_parquet('{lake}/events/app_id=bench/*/*/*.parquet', hive_partitioning = false)"
    start, end = f"TIMESTAMPTZ '{DAY} 00:00:00+00'", f"TIMESTAMPTZ '{DAY + timedelta(days=1)} 00:00:00+00'"
    connection = duckdb.connect()
    segments = [("all", "TRUE")]
    segments += [
        (f"os:{o}", f"os = '{o}'")
        for (o,) in connection.execute(f"SELECT DISTINCT os FROM {events}").fetchall()
    ]
    segments += [
        (f"region:{r}", f"region = '{r}'")
        for (r,) in connection.execute(f"SELECT DISTINCT region FROM {events}").fetchall()
    ]
    on_day = f"event_time >= {start} AND event_time < {end}"
    launch = "event_name = 'app_launch' AND success"
    queries = 0
    for _segment, where in segments:
        per_metric = [
            f"SELECT count(DISTINCT user_id) FROM {events} WHERE {launch} AND {on_day} AND {where}",
            f"SELECT count(*) FROM (SELECT DISTINCT user_id FROM {events}"
            f" WHERE {launch} AND {on_day} AND {where}) d JOIN (SELECT user_id, min(event_time) AS first_time"
            f" FROM {events} WHERE {launch} GROUP BY user_id) f"
            f" ON f.user_id = d.user_id WHERE f.first_time >= {start}",
            f"SELECT count(DISTINCT user_id) FROM {events} WHERE {launch} AND event_time < {end} AND {where}",
            f"SELECT count(*) FROM {events} WHERE {launch} AND {on_day} AND {where}",
            f"SELECT median(d) FROM (SELECT l.user_id, coalesce(sum(s.duration_ms), 0) AS d FROM"
            f" (SELECT DISTINCT user_id FROM {events} WHERE {launch} AND {on_day} AND {where}) l LEFT JOIN"
            f" (SELECT * FROM {events} WHERE event_name = 'session_end' AND {on_day} AND {where}) s"
            f" ON s.user_id = l.user_id GROUP BY l.user_id)",
            f"SELECT median(duration_ms) FROM {events}"
            f" WHERE event_name = 'session_end' AND {on_day} AND {where}",
            f"SELECT count(DISTINCT user_id), sum(amount) FROM {events}"
            f" WHERE event_name = 'recharge_order' AND {on_day} AND {where}",
            f"SELECT count(*) FROM {events} WHERE event_name = 'redeem_order' AND {on_day} AND {where}",
            f"SELECT avg(launch_ms), avg(CASE WHEN success THEN 1 ELSE 0 END) FROM {events}"
            f" WHERE event_name = 'app_launch' AND {on_day} AND {where}",
        ]
        per_metric += [
            f"SELECT count(*) FROM {events} WHERE event_name = '{stage}' AND {on_day} AND {where}"
            for stage in PAGE_VIEWS
        ]
        for query in per_metric:
            connection.execute(query).fetchall()
            queries += 1
    return {"queries": queries, "segments": len(segments)}


SCENARIOS = {"read": scenario_read, "full": scenario_full, "naive": scenario_naive}


def run_child(scenario: str, lake: Path) -> tuple[float, float, dict]:
    """Run one scenario in a fresh process; returns (seconds, peak RSS MB, its result)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", scenario, "--lake", str(lake)],
        stdout=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    output = process.stdout.read() if process.stdout else ""
    if status != 0:
        raise SystemExit(f"scenario {scenario} failed")
    return elapsed, usage.ru_maxrss / 1024, json.loads(output.strip().splitlines()[-1])


def print_child_result(scenario: Callable[..., dict], *arguments: object) -> None:
    """A child process's part of a benchmark: run one scenario and print its result as one JSON
    line, with the seconds the call took inside the process (``inner_seconds``)."""
    started = time.perf_counter()
    result = scenario(*arguments)
    result["inner_seconds"] = round(time.perf_counter() - started, 3)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("bench/out/metrics"))
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--lake", type=Path)
    args = parser.parse_args()
    if args.child:
        print_child_result(SCENARIOS[args.child], args.lake)
        return

    lakes = {}
    for history in (HISTORY_DAYS, 7):
        lake = args.workdir / f"lake-{history}d"
        marker = lake / "bench-complete.json"
        if not marker.exists():
            shutil.rmtree(lake, ignore_errors=True)
            started = time.perf_counter()
            day_events = generate_lake(lake, history)
            print(
                f"generated {history} days of history + a day of {day_events:,} events"
                f" in {time.perf_counter() - started:.0f} s"
            )
            marker.write_text(json.dumps({"day_events": day_events}))
        # the daily steady state: the state of earlier days exists (built by earlier runs)
        run_child("full", lake)
        lakes[history] = lake
    day_events = json.loads((lakes[HISTORY_DAYS] / "bench-complete.json").read_text())["day_events"]

    plan = [
        ("(a) read needed columns into Arrow", "read", HISTORY_DAYS),
        ("(b) full document, 60 days of history", "full", HISTORY_DAYS),
    ]
    if not args.skip_naive:
        plan.append(("(c) naive: one query per metric per segment", "naive", HISTORY_DAYS))
    plan.append(("(d) full document, 7 days of history", "full", 7))
    results = {}
    print(
        f"\nday of {day_events:,} events; median of {args.runs} runs, each in a fresh process;"
        f" {os.cpu_count()} cores"
    )
    print(f"{'scenario':48} {'seconds':>8} {'peak RSS MB':>12}")
    for label, scenario, history in plan:
        runs = [run_child(scenario, lakes[history]) for _ in range(args.runs if scenario != "naive" else 1)]
        seconds = statistics.median(run[0] for run in runs)
        peak = statistics.median(run[1] for run in runs)
        results[label] = (seconds, peak, runs[0][2])
        print(f"{label:48} {seconds:8.2f} {peak:12.0f}   {runs[0][2]}")
    read = results["(a) read needed columns into Arrow"][0]
    full60 = results["(b) full document, 60 days of history"][0]
    full7 = results["(d) full document, 7 days of history"][0]
    print(
        f"\nfull / read = {full60 / read:.2f}x;"
        f" 60 vs 7 days of history: {100 * (full60 - full7) / full7:+.0f} %"
    )
    if not args.skip_naive:
        print(f"naive / full = {results['(c) naive: one query per metric per segment'][0] / full60:.1f}x")


if __name__ == "__main__":
    main()
