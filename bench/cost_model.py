"""A model of what one day of events costs to ingest and compute on AWS, per million events and in
all, at 1 M, 100 M and 1 B events a day.

Every rate is a list price (us-east-1, on-demand, x86, no free tier) and every quantity comes from
this repository's own measurements, named where it is used; the formula of each line is printed
with it. It models the stack as deployed (template.yaml): API Gateway REST API -> ingest function
(512 MB) -> SQS -> writer function (1,024 MB) -> Parquet in S3; the metrics function (3,008 MB)
recomputes each day RECOMPUTE_DAYS times. Athena is priced for reading the day's events once per
recompute (the engine of the next issue step); the embedded engine ends near 25 M events a day
(one Lambda: 10 GB, 15 minutes), so its line is marked beyond that.

    .venv/bin/python bench/cost_model.py [--batch 500] [--recompute-days 3]
"""

from __future__ import annotations

import argparse

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
# Issue "Beyond one Lambda": `compute` of a day of ~1 M events takes 3.4 s (5 M: 19.5 s).
COMPUTE_SECONDS_PER_MILLION_EVENTS = 3.4
EMBEDDED_CEILING_EVENTS = 25_000_000  # ~350 MB of memory per million events in one 10 GB Lambda
# A writer invocation takes what fits in Lambda's 6 MB payload (~20,000 events) and writes one
# file per hour partition it touches (2 on average: batches straddle an hour now and then).
EVENTS_PER_WRITER_INVOCATION = 6 * 1024 * 1024 / QUEUE_BYTES_PER_EVENT
FILES_PER_WRITER_INVOCATION = 2

INGEST_GB, WRITER_GB, METRICS_GB = 0.5, 1.0, 3008 / 1024


def lines(events: float, batch: int, recompute_days: int) -> list[tuple[str, float, str]]:
    """(item, USD for one day of ``events``, formula) for each cost."""
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
            "Athena instead (the day's events read once per recompute)",
            recompute_days * events * PARQUET_BYTES_PER_EVENT / 1e12 * ATHENA_PER_TB_SCANNED,
            f"{recompute_days} x {PARQUET_BYTES_PER_EVENT:.1f} B/event x $5/TB",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=500, help="events per API request")
    parser.add_argument("--recompute-days", type=int, default=3)
    args = parser.parse_args()
    scales = (1e6, 1e8, 1e9)
    print("| item | per M events | 1 M/day | 100 M/day | 1 B/day | formula |")
    print("| --- | --- | --- | --- | --- | --- |")
    totals = [0.0, 0.0, 0.0]
    for index, (item, _cost, formula) in enumerate(lines(1e6, args.batch, args.recompute_days)):
        costs = [lines(events, args.batch, args.recompute_days)[index][1] for events in scales]
        if not item.startswith("Athena"):
            totals = [total + cost for total, cost in zip(totals, costs, strict=True)]
        # beyond its ceiling the embedded engine does not run: the day needs the Athena engine
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
        f"| **total a day (without Athena)** | ${totals[0]:.4f} | ${totals[0]:.2f} | ${totals[1]:.2f} |"
        f" ${totals[2]:.2f} | sum of the lines above |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
