"""A model of what one day of events costs to ingest and compute on AWS, per million events and in
all, at 1 M, 100 M and 1 B events a day.

Every rate is a list price (us-east-1, on-demand, x86, no free tier) and every quantity comes from
this repository's own measurements, named where it is used; the formula of each line is printed
with it. It models the stack as deployed (template.yaml): API Gateway REST API -> ingest function
(512 MB) -> SQS -> writer function (1,024 MB) -> Parquet in S3; the metrics function (3,008 MB)
recomputes each day RECOMPUTE_DAYS times. The embedded engine was measured to fit the deployed
function up to a day of 20 M events (bench/ceiling_bench.py), so its line is marked beyond that; the
Athena engine's line is what a
day costs computed there instead (README, "The Athena engine"): its plan's queries read the day's
events twice (the day's events, its page views), the launch and order columns of all history
twice (launch days, standing orders; --history-days of it), each query at least Athena's 10 MB.
The bytes each read are measured from a lake's Parquet: the compressed column chunks of the
columns the queries name (``--lake DIR`` re-measures them on a lake written by the benches, e.g.
bench/out/metrics/lake after bench/metrics_bench.py; without it, the figures measured so).

    .venv/bin/python bench/cost_model.py [--batch 500] [--recompute-days 3] [--history-days 90] [--lake DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# --- list prices (USD) ----------------------------------------------------------------------------
API_PER_MILLION_REQUESTS = 3.50  # REST API, first 333 M requests a month
LAMBDA_PER_GB_SECOND = 0.0000166667
LAMBDA_PER_MILLION_INVOCATIONS = 0.20
SQS_PER_MILLION_REQUESTS = 0.40  # standard queue; each 64 KiB of a request's payload is one request
S3_PER_THOUSAND_PUTS = 0.005
S3_PER_GB_MONTH = 0.023
ATHENA_PER_TB_SCANNED = 5.00

# --- measured here --------------------------------------------------------------------------------
# bench/ingest_bench.py (a): validate + enqueue one request of 1,000 events, 11.9 ms of one core
# (README Performance); its queue payload is 291 KiB per 1,000 events.
INGEST_MS_PER_1000_EVENTS = 11.9
QUEUE_BYTES_PER_EVENT = 291 * 1024 / 1000
# bench/ingest_bench.py (b): the writer turns 10,000 events into Parquet in 90.5 ms.
WRITER_MS_PER_10000_EVENTS = 90.5
# bench/ingest_bench.py (c): 979,963 rows of a generated day are 23.9 MB of zstd Parquet.
PARQUET_BYTES_PER_EVENT = 23.9e6 / 979_963
# bench/ceiling_bench.py: `compute` of a day of ~1 M events takes 3.66 s (5 M: 9.95 s, 2.0 s a
# million; the 1 M figure is kept, the larger for the days the embedded engine computes).
COMPUTE_SECONDS_PER_MILLION_EVENTS = 3.66
# bench/ceiling_bench.py --lambda-mb 3008: a day of 20 M events fits the deployed function (2.4 GB
# with spilling, under a minute); larger days were not measured.
EMBEDDED_CEILING_EVENTS = 20_000_000
# template.yaml's AthenaEngineDayBytes default (150 MB) at PARQUET_BYTES_PER_EVENT
ATHENA_THRESHOLD_EVENTS = 6_000_000
# A writer invocation takes what fits in Lambda's 6 MB payload (~20,000 events) and writes one
# file per hour partition it touches (2 on average: batches straddle an hour now and then).
EVENTS_PER_WRITER_INVOCATION = 6 * 1024 * 1024 / QUEUE_BYTES_PER_EVENT
FILES_PER_WRITER_INVOCATION = 2

INGEST_GB, WRITER_GB, METRICS_GB = 0.5, 1.0, 3008 / 1024

# The Athena engine's plan (minidrama.metrics.athena.plan_day): 29 queries a day; the columns of the
# events table its four event-reading queries name (the dedup keys, then what each keeps).
ATHENA_QUERIES_PER_DAY = 29
ATHENA_MIN_BYTES_PER_QUERY = 10e6
DAY_QUERY_COLUMNS = (
    "event_id", "event_name", "event_time", "received_at", "user_id", "session_id", "os", "region",
    "entry_point", "success", "launch_ms", "device_brand", "device_model", "tiktok_version", "gender",
    "age_group", "duration_ms", "order_id", "amount", "product_id",
)  # fmt: skip
HISTORY_QUERY_COLUMNS = (
    "event_id", "event_name", "event_time", "received_at", "user_id", "os", "region", "success",
    "order_id", "amount", "product_id",
)  # fmt: skip
# Measured with --lake on the writer's files of realistic events: `minidrama ingest` of
# bench/ingest_bench.py's file (979,963 rows stored, 24.4 B/event in all) into an empty lake,
# compressed bytes per event of those columns. The lean events of bench/ceiling_bench.py's 1 M
# lake measure 9.17 and 6.91. Replaced by --lake's own measurement.
MEASURED_BYTES_PER_EVENT = {"day": 24.24, "history": 18.42}


def measure_columns(lake: Path) -> dict[str, float]:
    """Compressed bytes per event of the day queries' and the history queries' columns, over the
    events files of the lake's largest UTC day (the benches' full day; footers only)."""
    import pyarrow.parquet as pq

    days: dict[str, list[Path]] = {}
    for path in sorted((lake / "events").rglob("*.parquet")):
        dt = next((part for part in path.parts if part.startswith("dt=")), "")
        days.setdefault(dt, []).append(path)
    if not days:
        sys.exit(f"no events Parquet under {lake}/events")
    measured: list[tuple[int, dict[str, int]]] = []
    for paths in days.values():
        totals = {"day": 0, "history": 0}
        rows = 0
        for path in paths:
            metadata = pq.ParquetFile(path).metadata
            rows += metadata.num_rows
            for group in range(metadata.num_row_groups):
                row_group = metadata.row_group(group)
                for index in range(row_group.num_columns):
                    column = row_group.column(index)
                    name = column.path_in_schema.split(".")[0]
                    size = column.total_compressed_size
                    totals["day"] += size if name in DAY_QUERY_COLUMNS else 0
                    totals["history"] += size if name in HISTORY_QUERY_COLUMNS else 0
        measured.append((rows, totals))
    rows, totals = max(measured, key=lambda item: item[0])
    return {kind: total / rows for kind, total in totals.items()}


def athena_day(events: float, history_days: int, measured: dict[str, float]) -> float:
    """Bytes Athena bills for computing one day of ``events`` (its history of the same size a day)."""
    scanned = 2 * events * measured["day"] + 2 * history_days * events * measured["history"]
    return scanned + ATHENA_QUERIES_PER_DAY * ATHENA_MIN_BYTES_PER_QUERY


def lines(
    events: float,
    batch: int,
    recompute_days: int,
    history_days: int = 90,
    measured: dict[str, float] | None = None,
) -> list[tuple[str, float, str]]:
    """(item, USD for one day of ``events``, formula) for each cost."""
    measured = measured or MEASURED_BYTES_PER_EVENT
    requests = events / batch
    queue_requests = 3 * events * QUEUE_BYTES_PER_EVENT / 65536  # send, receive, delete
    writer_invocations = events / EVENTS_PER_WRITER_INVOCATION
    compute_seconds = recompute_days * COMPUTE_SECONDS_PER_MILLION_EVENTS * events / 1e6
    return [
        ("API Gateway", requests / 1e6 * API_PER_MILLION_REQUESTS, f"events/{batch} requests x $3.50/M"),
        (
            "ingest function",
            requests * INGEST_MS_PER_1000_EVENTS * batch / 1000 / 1000 * INGEST_GB * LAMBDA_PER_GB_SECOND
            + requests / 1e6 * LAMBDA_PER_MILLION_INVOCATIONS,
            f"{INGEST_MS_PER_1000_EVENTS} ms/1,000 events x 0.5 GB + $0.20/M invocations",
        ),
        (
            "SQS",
            queue_requests / 1e6 * SQS_PER_MILLION_REQUESTS,
            f"3 x {QUEUE_BYTES_PER_EVENT:.0f} B/event / 64 KiB x $0.40/M",
        ),
        (
            "writer function",
            events / 10_000 * WRITER_MS_PER_10000_EVENTS / 1000 * WRITER_GB * LAMBDA_PER_GB_SECOND
            + writer_invocations / 1e6 * LAMBDA_PER_MILLION_INVOCATIONS,
            f"{WRITER_MS_PER_10000_EVENTS} ms/10,000 events x 1 GB",
        ),
        (
            "S3 PUTs",
            writer_invocations * FILES_PER_WRITER_INVOCATION / 1000 * S3_PER_THOUSAND_PUTS,
            "2 files per ~20,000 events x $0.005/1,000",
        ),
        (
            "S3 storage (a month of the day's Parquet)",
            events * PARQUET_BYTES_PER_EVENT / 1e9 * S3_PER_GB_MONTH,
            f"{PARQUET_BYTES_PER_EVENT:.1f} B/event x $0.023/GB-month",
        ),
        (
            "metrics function (embedded engine)",
            compute_seconds * METRICS_GB * LAMBDA_PER_GB_SECOND,
            f"{recompute_days} recomputes x {COMPUTE_SECONDS_PER_MILLION_EVENTS} s/M events x 2.94 GB",
        ),
        (
            f"Athena engine instead ({history_days} days of history)",
            recompute_days * athena_day(events, history_days, measured) / 1e12 * ATHENA_PER_TB_SCANNED,
            f"{recompute_days} recomputes x (2 x {measured['day']:.1f} B/event of the day"
            f" + 2 x {history_days} days x {measured['history']:.1f} B/event of history"
            f" + {ATHENA_QUERIES_PER_DAY} queries x 10 MB minimum) x $5/TB",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=500, help="events per API request")
    parser.add_argument("--recompute-days", type=int, default=3)
    parser.add_argument(
        "--history-days", type=int, default=90, help="days of history the Athena engine reads"
    )
    parser.add_argument("--lake", type=Path, help="measure the columns' bytes on this lake's events")
    args = parser.parse_args()
    measured = measure_columns(args.lake) if args.lake else MEASURED_BYTES_PER_EVENT
    if args.lake:
        print(f"measured on {args.lake}: {measured['day']:.2f} B/event (day queries), "
              f"{measured['history']:.2f} B/event (history queries)\n")  # fmt: skip
    extra = (args.history_days, measured)
    scales = (1e6, 1e8, 1e9)
    print("| item | per M events | 1 M/day | 100 M/day | 1 B/day | formula |")
    print("| --- | --- | --- | --- | --- | --- |")
    totals = [0.0, 0.0, 0.0]
    for index, (item, _cost, formula) in enumerate(lines(1e6, args.batch, args.recompute_days, *extra)):
        costs = [lines(events, args.batch, args.recompute_days, *extra)[index][1] for events in scales]
        # the engine the threshold picks: embedded up to it, Athena above (template.yaml's default)
        for column, events in enumerate(scales):
            embedded = events <= ATHENA_THRESHOLD_EVENTS
            if item.startswith("metrics") and not embedded or item.startswith("Athena") and embedded:
                continue
            totals[column] += costs[column]
        cells = [
            f"${cost:.2f}"
            + (
                " (beyond one Lambda)"
                if item.startswith("metrics") and events > EMBEDDED_CEILING_EVENTS
                else ""
            )
            for cost, events in zip(costs, scales, strict=True)
        ]
        print(f"| {item} | ${costs[0]:.4f} | {' | '.join(cells)} | {formula} |")
    print(
        f"| **total a day** (the metrics on the engine the threshold picks: embedded up to"
        f" {ATHENA_THRESHOLD_EVENTS / 1e6:.0f} M events, Athena above) | ${totals[0]:.4f}"
        f" | ${totals[0]:.2f} | ${totals[1]:.2f} | ${totals[2]:.2f} | sum of the lines above |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
