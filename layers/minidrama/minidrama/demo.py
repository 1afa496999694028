"""``minidrama demo``: weeks of a demo app's traffic through the real pipeline, on a local lake.

The demo registers the app ``demo-drama`` (Los Angeles time, so its calendar days are not UTC
days and one of them is 25 hours long when daylight saving time ends), simulates its traffic
(:mod:`minidrama.simulator`) for the days ending yesterday, sends each day's events through the
same ingestion code as ``POST /v1/apps/{app_id}/events`` in batches of at most 1,000 events,
computes every day's metrics document and renders the last day's report, then says where
everything is.

It is safe to run again: the lake it creates (``OUT/lake`` unless ``--lake`` is given) carries a
marker file, and only a directory with that marker is wiped before a new run. A directory the
demo did not create is never deleted; if it already holds the demo app's events the demo stops
and asks for another place, since a second simulation on top of the first would mix two runs.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from minidrama.config import REPORT_KINDS, AppConfig, load_rates, register_app
from minidrama.dashboard import LOCAL_API_URL, DashboardLinks, dashboard_url
from minidrama.lake import LocalStorage, Storage, open_lake
from minidrama.simulator import simulate
from minidrama.tokens import DEFAULT_TOKEN_DAYS, LakeSecret, issue_token

__all__ = [
    "DEMO_APP_ID",
    "DEMO_TIMEZONE",
    "DEMO_CURRENCY",
    "DEMO_RECIPIENTS",
    "BATCH_SIZE",
    "MARKER_NAME",
    "DemoLakeError",
    "demo_days",
    "received_at_of",
    "prepare_lake",
    "run_demo",
]

DEMO_APP_ID = "demo-drama"
DEMO_TIMEZONE = "America/Los_Angeles"
DEMO_CURRENCY = "USD"
DEMO_RECIPIENTS = ["team@studio.example"]
BATCH_SIZE = 1_000  # the API's limit per request
MARKER_NAME = ".minidrama-demo"
SAMPLE_EVENTS_NAME = "sample-events.ndjson"  # for `minidrama ingest`
SAMPLE_REQUEST_NAME = "sample-request.json"  # a body for POST /v1/apps/{app_id}/events
_SAMPLE_EVENTS = 100
_REPORT_FILES = {".html": "web page", ".pdf": "PDF", ".eml": "email"}


class DemoLakeError(Exception):
    """The demo cannot use the lake location it was given; the message says why and what to do."""


def demo_days(now: datetime, timezone: str, days: int) -> list[date]:
    """The ``days`` calendar days in ``timezone`` that end yesterday there, oldest first."""
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    return AppConfig(app_id=DEMO_APP_ID, timezone=timezone).complete_days(now, days)


def received_at_of(batch: list[dict[str, Any]], now: datetime) -> datetime:
    """When a batch arrives: just after its newest event (SDKs send as they go), never after ``now``."""
    newest = max(
        (
            datetime.fromisoformat(event["event_time"])
            for event in batch
            if isinstance(event.get("event_time"), str)
        ),
        default=now,
    )
    return min(newest.astimezone(UTC) + timedelta(seconds=2), now)


def prepare_lake(out_dir: Path, lake: str | None) -> Storage:
    """Open (and, for a local lake made by an earlier demo, wipe) the lake the demo writes to.

    A local lake is ``lake`` or ``out_dir / "lake"``. It is deleted and recreated only when it
    holds the marker file an earlier demo wrote; any other non-empty directory is kept as it is.
    Raises :class:`DemoLakeError` when the location is unusable or already holds the demo app's
    events that the demo may not delete.
    """
    if lake is not None and lake.startswith("s3://"):
        storage = open_lake(lake)
    else:
        root = Path(lake) if lake is not None else out_dir / "lake"
        try:
            if (root / MARKER_NAME).is_file():
                shutil.rmtree(root)
            fresh = not root.exists() or (root.is_dir() and not any(root.iterdir()))
            root.mkdir(parents=True, exist_ok=True)
            if fresh:
                (root / MARKER_NAME).write_text(
                    "This lake was created by `minidrama demo`; its next run deletes and recreates it.\n"
                )
        except OSError as error:
            raise DemoLakeError(f"cannot use {root} as the demo's lake: {error}") from error
        storage = LocalStorage(root)
    if storage.list(f"events/app_id={DEMO_APP_ID}/"):
        raise DemoLakeError(
            f"{storage.uri} already holds events of the app {DEMO_APP_ID!r} and was not created by the demo, "
            "so the demo will not delete them; run it with another --out or --lake"
        )
    return storage


def _batches(events: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


def _where(storage: Storage, key: str) -> str:
    return f"{storage.uri.rstrip('/')}/{key}"


def _print_period_reports(storage: Storage, app_id: str, period_keys: list[str]) -> None:
    """The commands that render the weekly and monthly reports of the latest complete week and month."""
    options = []
    for option, partition in (("--week", "week="), ("--month", "month=")):
        labels = [key.split(partition, 1)[1].split("/", 1)[0] for key in period_keys if partition in key]
        if labels:
            options.append(f"{option} {max(labels)}")
    if not options:
        return
    print()
    print(
        "The demo app asks for weekly and monthly reports too (sent on Mondays and on the 1st); render one:"
    )
    for option in options:
        print(f"  minidrama report --lake {storage.uri} --app {app_id} {option}")


def run_demo(out_dir: Path, lake: str | None, days: int, seed: int) -> int:
    """Simulate ``days`` days of the demo app, ingest, compute every day, report the last one.

    Prints a summary of what happened and where the files are; returns the exit code.
    """
    from minidrama.ingestion import ingest_events
    from minidrama.metrics import compute_days
    from minidrama.report import report_command

    started = time.monotonic()
    if days < 1:
        print(f"minidrama demo: --days must be at least 1, not {days}", file=sys.stderr)
        return 2
    try:
        storage = prepare_lake(out_dir, lake)
    except DemoLakeError as error:
        print(f"minidrama demo: {error}", file=sys.stderr)
        return 2
    app, api_key = register_app(
        storage,
        DEMO_APP_ID,
        timezone=DEMO_TIMEZONE,
        currency=DEMO_CURRENCY,
        recipients=DEMO_RECIPIENTS,
        reports=list(REPORT_KINDS),
    )
    rates = load_rates(storage)
    now = datetime.now(UTC)
    days_list = demo_days(now, app.timezone, days)
    first_day, last_day = days_list[0], days_list[-1]
    print(
        f"minidrama demo: {days} days of made-up traffic of the app {app.app_id!r} "
        f"({first_day} to {last_day}, days in {app.timezone}, money in {app.currency})",
        flush=True,
    )
    print(f"  lake: {storage.uri}", flush=True)

    sent = accepted = rejected = batches = 0
    reasons: Counter[str] = Counter()
    sample: list[dict[str, Any]] = []
    for number, (day, events) in enumerate(simulate(first_day, days, seed, timezone=app.timezone), start=1):
        for batch in _batches(events, BATCH_SIZE):
            result = ingest_events(
                storage, app, batch, received_at=received_at_of(batch, now), rates=rates, bulk=True
            )
            sent += len(batch)
            accepted += result.accepted
            rejected += len(result.rejected)
            reasons.update(
                error.split(":", 1)[0] for rejection in result.rejected for error in rejection.errors
            )
            batches += 1
        if day == last_day:
            sample = events[:_SAMPLE_EVENTS]
        if number % 7 == 0 or day == last_day:
            print(f"  ... {day}: {sent:,} events sent so far", flush=True)
    ingested_at = time.monotonic()

    events_path, request_path = _write_samples(out_dir, sample)

    print()
    print(f"Sent {sent:,} events in {batches:,} batches through the ingestion code of the HTTP API:")
    print(f"  accepted  {accepted:>9,}  ->  {_where(storage, f'events/app_id={app.app_id}/')}")
    print("                                 (Parquet, partitioned by UTC date and hour)")
    print(f"  rejected  {rejected:>9,}  ->  {_where(storage, f'quarantine/app_id={app.app_id}/')}")
    print("                                 (JSON Lines: each bad event with the reason it was refused)")
    if reasons:
        by_field = ", ".join(f"{field} {count:,}" for field, count in reasons.most_common())
        print(f"                                 (what was wrong, by field: {by_field})")
    print("  Re-sent duplicates are accepted, and counted once by the metrics.")
    print(f"  What an app sends, one event per line: {events_path}")

    print()
    print(f"Computing the {days} daily metrics documents (JSON), one per day ...", flush=True)
    written = compute_days(storage, app, days_list, now)
    computed_at = time.monotonic()
    keys = [key for key in written if "/dt=" in key]
    periods = [key for key in written if "/dt=" not in key]
    print(f"  {_where(storage, keys[0])}")
    if len(keys) > 2:
        print(f"  ... ({len(keys) - 2} more, dt={days_list[1]} to dt={days_list[-2]})")
    if len(keys) > 1:
        print(f"  {_where(storage, keys[-1])}")
    print(f"  {last_day}: {_headline(json.loads(storage.get_bytes(keys[-1])))}")
    if periods:
        print("  and the documents of the complete weeks and months:")
        for key in periods:
            print(f"  {_where(storage, key)}")
    print(f"  Each day's facts (Parquet tables any engine can read): {_where(storage, 'facts/')}")
    week_start = max(first_day, last_day - timedelta(days=6))
    print()
    print("Ask any date range (JSON, or --format csv), or get the daily series behind a chart (CSV):")
    print(
        f"  minidrama query --lake {storage.uri} --app {app.app_id} --from {week_start} --to {last_day}"
        " --segment all os:ios"
    )
    print(
        f"  minidrama export --lake {storage.uri} --app {app.app_id} --from {first_day} --to {last_day}"
        " --metric dashboard.active_users iap_orders.all.gmv"
    )
    print()
    print(f"The report of {last_day}, as emailed to {', '.join(app.recipients)}:", flush=True)
    printed = io.StringIO()
    links = DashboardLinks(LOCAL_API_URL, LakeSecret(storage, create=True), DEFAULT_TOKEN_DAYS)
    with contextlib.redirect_stdout(printed):
        code = report_command(storage, app, last_day, None, links)
    for line in printed.getvalue().splitlines():
        label = next((name for suffix, name in _REPORT_FILES.items() if line.endswith(suffix)), "")
        print(f"  {label:<9} {line}" if label else f"  {line}")
    _print_period_reports(storage, app.app_id, periods)
    finished = time.monotonic()
    token = issue_token(
        LakeSecret(storage).current(), app.app_id, datetime.now(UTC) + timedelta(days=DEFAULT_TOKEN_DAYS)
    )
    print()
    print("Serve this lake over HTTP: the events API, the read API and the dashboard:")
    print(f"  minidrama serve --lake {storage.uri}")
    print(
        f"then open the dashboard (its read token works {DEFAULT_TOKEN_DAYS} days;"
        " `minidrama apps token` makes more):"
    )
    print(f"  {dashboard_url(LOCAL_API_URL, app.app_id, token.token)}")
    print("or send events (the key is new on every demo run), and read a range as JSON:")
    print(
        f"  curl -X POST {LOCAL_API_URL}/v1/apps/{app.app_id}/events -H 'x-api-key: {api_key}' "
        f"-H 'content-type: application/json' --data @{request_path}"
    )
    print(
        f"  curl -H 'Authorization: Bearer {token.token}' "
        f"'{LOCAL_API_URL}/v1/apps/{app.app_id}/metrics?from={week_start}&to={last_day}'"
    )
    print()
    print(
        f"Done in {finished - started:.1f} s (simulate and ingest {ingested_at - started:.1f} s, "
        f"metrics {computed_at - ingested_at:.1f} s, report {finished - computed_at:.1f} s)."
    )
    return code


def _write_samples(out_dir: Path, events: list[dict[str, Any]]) -> tuple[Path, Path]:
    """A few of the last day's events, as NDJSON and as an HTTP request body, to try things by hand."""
    out_dir.mkdir(parents=True, exist_ok=True)
    events_path = out_dir / SAMPLE_EVENTS_NAME
    events_path.write_text("".join(json.dumps(event) + "\n" for event in events))
    request_path = out_dir / SAMPLE_REQUEST_NAME
    request_path.write_text(json.dumps({"events": events[:20]}, indent=2) + "\n")
    return events_path, request_path


def _headline(document: dict[str, Any]) -> str:
    """A one-line taste of a metrics document, in words a newcomer reads at a glance."""
    everyone = document["segments"]["all"]
    dashboard = everyone["dashboard"]
    d1 = everyone["retention"]["new"]["d1"]["rate"]
    paying = everyone["iap_users"]
    gmv = everyone["iap_orders"]["all"]["gmv"]
    parts = [
        f"{dashboard['active_users']:,} active users",
        f"{dashboard['new_users']:,} new",
        f"day-1 retention {d1:.0%}" if d1 is not None else "day-1 retention n/a",
        f"{paying['paying_users']:,} paying users",
        f"GMV {gmv:,.2f} {document['currency']}",
    ]
    return ", ".join(parts)
