"""The ``minidrama`` command (also ``python -m minidrama``): the operator's trusted path.

Each subcommand parses its arguments here and makes one call into the package.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minidrama.config import (
    DEFAULT_REPORT_HOUR,
    REPORT_KINDS,
    AppConfig,
    ConfigError,
    add_app,
    app_or_default,
    get_app,
    load_apps,
    rotate_key,
    update_app,
    validate_app_id,
    validate_recipients,
)
from minidrama.dashboard import LOCAL_API_URL
from minidrama.journal import FLUSH_SECONDS, JOURNAL_DIRECTORY
from minidrama.lake import LocalStorage, Storage, open_lake
from minidrama.metrics.exceptions import MetricsError
from minidrama.progress import Progress
from minidrama.tokens import (
    DEFAULT_TOKEN_DAYS,
    MAX_TOKEN_DAYS,
    LakeSecret,
    SecretsManagerSecret,
    issue_token,
)

if TYPE_CHECKING:
    from minidrama.report.period import ReportPeriod

__all__ = ["main"]


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-28") from error


def _report_period(kind: str) -> Callable[[str], ReportPeriod]:
    """The --date / --week / --month of ``report``: the period of that report."""

    def period(text: str) -> ReportPeriod:
        # The report package is imported by the report command only (it loads the renderer).
        from minidrama.report.period import ReportPeriod

        if kind == "daily":
            return ReportPeriod.day(_day(text))
        try:
            return ReportPeriod.parse_week(text) if kind == "weekly" else ReportPeriod.parse_month(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from error

    return period


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535, or 0 for any free one)")
    return int(text)


def _journal_note(storage: Storage) -> None:
    """Say so when the local server's journal holds batches not yet in the lake's files."""
    if isinstance(storage, LocalStorage) and any((storage.root / JOURNAL_DIRECTORY).glob("*.journal")):
        print(
            "minidrama: note: minidrama serve's journal holds events not yet in the lake's files "
            "(a running server stores them within its --flush-seconds; one that was killed, when "
            "it next starts): this computation does not count them",
            file=sys.stderr,
        )


def _flush_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds, got {text}")
    return value


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of worker processes (1 to 64)")
    return int(text)


def _add_lake(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lake",
        help="lake location: a directory or s3://bucket/prefix (default: $MINIDRAMA_LAKE, else ./lake)",
    )


def _report_hour(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 23:
        raise argparse.ArgumentTypeError(f"{text!r} is not an hour of the day, 0 to 23")
    return int(text)


def _report_kinds(text: str) -> list[str]:
    kinds = [kind.strip() for kind in text.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in REPORT_KINDS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"{unknown[0]!r} is not a report; choose from {','.join(REPORT_KINDS)}"
        )
    return list(dict.fromkeys(kinds))


def _add_settings(parser: argparse.ArgumentParser, *, new: bool) -> None:
    """The settings `apps add` and `apps set` take (defaults apply to a new app only)."""
    parser.add_argument(
        "--timezone", help="IANA time zone of the app's calendar day" + (" (default UTC)" if new else "")
    )
    parser.add_argument("--currency", help="reporting currency, ISO 4217" + (" (default USD)" if new else ""))
    parser.add_argument(
        "--email",
        nargs="+",
        metavar="ADDR",
        help="report recipients" + ("" if new else " (replaces the list)"),
    )
    parser.add_argument(
        "--report-hour",
        type=_report_hour,
        metavar="H",
        help="local hour the reports are sent, 0-23" + (f" (default {DEFAULT_REPORT_HOUR})" if new else ""),
    )
    parser.add_argument(
        "--reports",
        type=_report_kinds,
        metavar="KINDS",
        help="which reports, e.g. daily,weekly,monthly" + (" (default daily)" if new else ""),
    )


def _add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quiet", action="store_true", help="no progress on stderr (stdout keeps only the result)"
    )


def _command(
    commands: Any, name: str, *, help: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand whose --help opens with a description: its one-line help, unless it has a longer one."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help, description=description or help[0].upper() + help[1:] + "."
    )
    return parser


def _token_days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_TOKEN_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days from 1 to {MAX_TOKEN_DAYS}")
    return int(text)


def _add_secret_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secret-id",
        metavar="ARN",
        help="the deployed stack's read secret (output ReadTokenSecretArn) for an s3:// lake"
        " (default: $MINIDRAMA_READ_SECRET; a local lake keeps its own in config/)",
    )


def _read_secret(
    storage: Storage, secret_id: str | None, *, create: bool
) -> LakeSecret | SecretsManagerSecret:
    """The secret that signs read tokens: Secrets Manager for a deployed lake, else the lake's own."""
    secret_id = secret_id or os.environ.get("MINIDRAMA_READ_SECRET")
    if secret_id:
        import boto3

        return SecretsManagerSecret(boto3.client("secretsmanager"), secret_id)
    if storage.uri.startswith("s3://"):
        raise ConfigError(
            "a deployed lake's read tokens are signed with the stack's secret: pass --secret-id with"
            " the stack output ReadTokenSecretArn (or set MINIDRAMA_READ_SECRET)"
        )
    return LakeSecret(storage, create=create)


def _add_range(parser: argparse.ArgumentParser) -> None:
    """--lake, --app and the range's --from and --to (calendar days in the app's time zone)."""
    _add_lake(parser)
    parser.add_argument("--app", required=True, help="the app")
    parser.add_argument(
        "--from", dest="first", metavar="DATE", required=True, type=_day, help="first day, YYYY-MM-DD"
    )
    parser.add_argument(
        "--to", dest="last", metavar="DATE", required=True, type=_day, help="last day, YYYY-MM-DD"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minidrama", description="Analytics and daily reports for mini drama apps."
    )
    parser.add_argument("--version", action="version", version=f"minidrama {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    apps = _command(commands, "apps", help="register apps, list them, issue read tokens")
    apps_commands = apps.add_subparsers(dest="apps_command", required=True, metavar="ACTION")
    add = _command(
        apps_commands,
        "add",
        help="register a new app and print its API key once (exit 2 if it is registered)",
    )
    _add_lake(add)
    add.add_argument("app_id")
    _add_settings(add, new=True)
    settings = _command(apps_commands, "set", help="change an app's settings (its API key stays valid)")
    _add_lake(settings)
    settings.add_argument("app_id")
    _add_settings(settings, new=False)
    settings.add_argument("--add-email", nargs="+", metavar="ADDR", help="add report recipients")
    settings.add_argument("--remove-email", nargs="+", metavar="ADDR", help="remove report recipients")
    rotate_key_parser = _command(
        apps_commands, "rotate-key", help="print a new API key for an app; the old one stops working"
    )
    _add_lake(rotate_key_parser)
    rotate_key_parser.add_argument("app_id")
    listing = _command(apps_commands, "list", help="list registered apps (without keys)")
    _add_lake(listing)
    token = _command(
        apps_commands,
        "token",
        help="print a read token for the read API and the dashboard (never stored; expires)",
        description="Print one JSON line {app_id, token, expires_at} and the dashboard's address. The"
        " token reads this app's metrics until it expires or the read secret is rotated.",
    )
    _add_lake(token)
    token.add_argument("app_id")
    token.add_argument(
        "--days",
        type=_token_days,
        default=DEFAULT_TOKEN_DAYS,
        help=f"days it is valid (default {DEFAULT_TOKEN_DAYS})",
    )
    _add_secret_id(token)
    token.add_argument(
        "--url",
        default=LOCAL_API_URL,
        help=f"the API's base URL, for the dashboard link (default {LOCAL_API_URL}, minidrama serve)",
    )
    rotate = _command(
        apps_commands,
        "rotate-read-secret",
        help="replace the read tokens' signing secret: every read token issued so far stops working",
    )
    _add_lake(rotate)
    _add_secret_id(rotate)

    ingest = _command(commands, "ingest", help="ingest NDJSON files of events")
    _add_lake(ingest)
    ingest.add_argument("--app", required=True, help="the app the events belong to")
    ingest.add_argument("files", nargs="+", metavar="FILE", help="NDJSON: one event (JSON object) per line")
    ingest.add_argument(
        "--per-event",
        action="store_true",
        help="validate event by event, as the HTTP API does, and write every 10,000 lines"
        " (slower; the default checks whole chunks column-wise, with the same outcomes)",
    )
    _add_quiet(ingest)

    compute = _command(commands, "compute", help="compute the daily metrics documents")
    _add_lake(compute)
    compute.add_argument("--app", required=True, help="the app to compute")
    compute.add_argument(
        "--date", required=True, type=_day, help="the (first) day, YYYY-MM-DD, in the app's time zone"
    )
    compute.add_argument("--to", type=_day, help="last day to compute, YYYY-MM-DD (default: --date)")
    _add_quiet(compute)

    query = _command(
        commands,
        "query",
        help="print the range document of any date range (JSON or CSV), from the stored facts",
        description="The range document of the days FROM..TO (SPEC section 7): every metric over the"
        " range, for every segment. Every day of the range must have been computed (minidrama compute).",
    )
    _add_range(query)
    query.add_argument(
        "--segment", nargs="+", metavar="SEG", help="keep only these segments (all, os:ios, region:US, ...)"
    )
    query.add_argument(
        "--format", choices=("json", "csv"), default="json", help="output format (default json)"
    )
    query.add_argument("--out", type=Path, metavar="FILE", help="write to FILE instead of standard output")

    export = _command(
        commands,
        "export",
        help="print the daily series of a date range as CSV: one row per day, one column per metric",
        description="The daily documents of FROM..TO as CSV, one row per day and one column per metric"
        " path (module.metric.key): the data behind every line chart.",
    )
    _add_range(export)
    export.add_argument("--segment", default="all", metavar="SEG", help="the segment (default all)")
    export.add_argument(
        "--metric",
        nargs="+",
        metavar="PATH",
        help="columns by path or prefix, e.g. dashboard.active_users iap_orders.all.gmv"
        " (default: every series)",
    )
    export.add_argument("--out", type=Path, metavar="FILE", help="write to FILE instead of standard output")

    report = _command(
        commands, "report", help="render the daily, weekly or monthly report (HTML, PDF, email)"
    )
    _add_lake(report)
    report.add_argument("--app", required=True, help="the app to report on")
    period = report.add_mutually_exclusive_group(required=True)
    for option, kind, example in (
        ("--date", "daily", "the daily report of a day, YYYY-MM-DD (computed before)"),
        ("--week", "weekly", "the weekly report of an ISO week, e.g. 2026-W48 (its days computed before)"),
        ("--month", "monthly", "the monthly report of a month, e.g. 2026-11 (its days computed before)"),
    ):
        period.add_argument(
            option, type=_report_period(kind), dest="period", metavar=option[2:].upper(), help=example
        )
    report.add_argument("--email-to", nargs="+", metavar="ADDR", help="recipients (default: the app's)")
    report.add_argument(
        "--dashboard-url",
        metavar="URL",
        help="the API's base URL for the email's dashboard link (default for a local lake:"
        " http://127.0.0.1:8080, minidrama serve; an s3:// lake needs it and --secret-id)",
    )
    report.add_argument(
        "--link-days",
        type=_token_days,
        default=DEFAULT_TOKEN_DAYS,
        help=f"days the dashboard link works (default {DEFAULT_TOKEN_DAYS})",
    )
    _add_secret_id(report)

    serve = _command(
        commands, "serve", help="serve the HTTP API (events, read API, dashboard) on the local lake"
    )
    _add_lake(serve)
    serve.add_argument("--port", type=_port, default=8080, help="TCP port (default 8080; 0 picks a free one)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help="processes resolving requests (default: one per core; 1 resolves them on a thread)",
    )
    serve.add_argument(
        "--flush-seconds",
        type=_flush_seconds,
        default=FLUSH_SECONDS,
        help="accepted events are journaled before the 202 and stored in the lake's Parquet files "
        f"this often (default {FLUSH_SECONDS:g}; 0 stores each batch in the lake's files before its 202)",
    )

    demo = _command(
        commands, "demo", help="simulate a demo app for weeks, compute every day, render the report"
    )
    demo.add_argument(
        "--out", type=Path, default=Path("demo-out"), help="where the demo writes (default ./demo-out)"
    )
    demo.add_argument("--lake", help="the lake to fill (default: OUT/lake, created fresh by the demo)")
    demo.add_argument("--days", type=int, default=35, help="how many days to simulate (default 35)")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the simulation (default 7)")
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("minidrama")
    except PackageNotFoundError:  # the package on a path without its metadata (a Lambda layer)
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The commands print what a person needs; log records are for the Lambda functions' logs.
    logging.getLogger("minidrama").addHandler(logging.NullHandler())
    try:
        return _run(args)
    except (ConfigError, MetricsError, OSError) as error:
        print(f"minidrama: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        # AWS errors (no credentials, access denied, no such bucket) are the operator's to fix.
        if type(error).__module__.startswith(("botocore", "boto3", "s3transfer")):
            print(f"minidrama: {args.lake or 'the lake'}: {error}", file=sys.stderr)
            return 2
        raise


def _emit(text: str, out: Path | None) -> int:
    """Print ``text``, or write it to ``out`` and say where."""
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8", newline="")
        print(f"wrote {out}", file=sys.stderr)
    return 0


# Commands that read what is there: a lake path that does not exist is a typo, not an empty lake.
_READING_COMMANDS = frozenset({"compute", "report", "query", "export"})


def _check_lake(storage: Storage, command: str) -> None:
    if command in _READING_COMMANDS and isinstance(storage, LocalStorage) and not storage.root.is_dir():
        raise ConfigError(
            f"the lake {storage.uri} does not exist: check --lake (or $MINIDRAMA_LAKE);"
            " `minidrama apps add` or `minidrama ingest` makes a new one"
        )


def _app_with_data(storage: Storage, app_id: str, area: str) -> AppConfig:
    """The app's settings; an app never registered must at least have ``area`` (events/, metrics/)."""
    registered = get_app(storage, validate_app_id(app_id))
    if registered is not None:
        return registered
    if not storage.list(f"{area}/app_id={app_id}/"):
        raise ConfigError(
            f"app {app_id!r} is not registered and has no {area} in {storage.uri}: check the app id"
            " (`minidrama apps list`)"
        )
    return AppConfig(app_id=app_id)


def _not_after(app: AppConfig, last: date, *, ended: bool) -> None:
    """Refuse a day after the app's today (``ended``: a day that has not ended yet)."""
    today = datetime.now(UTC).astimezone(app.zone).date()
    if last > today or (ended and last == today):
        raise ConfigError(
            f"{last} {'has not ended yet' if last == today else 'is in the future'} in {app.timezone}"
            f" (it is {today} there): nothing to {'report' if ended else 'compute'} yet"
        )


def _print_token(storage: Storage, args: argparse.Namespace) -> int:
    if get_app(storage, validate_app_id(args.app_id)) is None:
        raise ConfigError(
            f"no app {args.app_id!r} is registered here: `minidrama apps add {args.app_id}` first"
        )
    secret = _read_secret(storage, args.secret_id, create=True)
    token = issue_token(secret.current(), args.app_id, datetime.now(UTC) + timedelta(days=args.days))
    print(json.dumps(token.public()))
    from minidrama.dashboard import dashboard_url

    print(f"dashboard: {dashboard_url(args.url, args.app_id, token.token)}", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from minidrama.demo import run_demo

        return run_demo(out_dir=args.out, lake=args.lake, days=args.days, seed=args.seed)

    storage: Storage = open_lake(args.lake)
    _check_lake(storage, args.command)
    if args.command == "apps":
        if args.apps_command == "add":
            app, api_key = add_app(
                storage,
                args.app_id,
                args.timezone,
                args.currency,
                args.email,
                report_hour=args.report_hour,
                reports=args.reports,
            )
            print(json.dumps({"app_id": app.app_id, "api_key": api_key}))
        elif args.apps_command == "set":
            app = update_app(
                storage,
                args.app_id,
                timezone=args.timezone,
                currency=args.currency,
                recipients=args.email,
                add_recipients=args.add_email,
                remove_recipients=args.remove_email,
                report_hour=args.report_hour,
                reports=args.reports,
            )
            print(json.dumps(app.public()))
        elif args.apps_command == "rotate-key":
            app, api_key = rotate_key(storage, args.app_id)
            print(json.dumps({"app_id": app.app_id, "api_key": api_key}))
        elif args.apps_command == "token":
            return _print_token(storage, args)
        elif args.apps_command == "rotate-read-secret":
            _read_secret(storage, args.secret_id, create=True).rotate()
            print(
                "minidrama: a new read secret is in place: every read token issued before is revoked",
                file=sys.stderr,
            )
        else:
            for app in load_apps(storage).values():
                print(json.dumps(app.public()))
        return 0
    if args.command == "ingest":
        from minidrama.ingestion import ingest_files

        return ingest_files(
            storage,
            app_or_default(storage, args.app),
            [Path(p) for p in args.files],
            quiet=args.quiet,
            bulk=not args.per_event,
        )
    if args.command == "compute":
        from minidrama.metrics import compute_days

        end = args.to or args.date
        if end < args.date:
            print("minidrama: --to must not be before --date", file=sys.stderr)
            return 2
        app = _app_with_data(storage, args.app, "events")
        _not_after(app, end, ended=False)
        _journal_note(storage)
        days = [args.date + timedelta(days=n) for n in range((end - args.date).days + 1)]
        # One day needs no progress; several show it (stdout keeps only the documents' paths).
        with Progress(len(days), "compute", unit="days", quiet=args.quiet or len(days) == 1) as progress:
            keys = compute_days(storage, app, days, on_day=lambda _day: progress.advance())
        for key in keys:
            print(f"{storage.uri.rstrip('/')}/{key}")
        return 0
    if args.command == "query":
        from minidrama.metrics import document_bytes, query_range
        from minidrama.metrics.tabular import document_csv

        document = query_range(
            storage, app_or_default(storage, args.app), args.first, args.last, args.segment
        )
        if args.format == "csv":
            return _emit(document_csv(document), args.out)
        return _emit(document_bytes(document).decode() + "\n", args.out)
    if args.command == "export":
        from minidrama.metrics import daily_documents
        from minidrama.metrics.tabular import series_csv

        documents = daily_documents(storage, app_or_default(storage, args.app), args.first, args.last)
        return _emit(series_csv(documents, args.segment, args.metric or ()), args.out)
    if args.command == "report":
        from minidrama.dashboard import DashboardLinks
        from minidrama.report import report_command

        validate_recipients(args.email_to or [])
        app = _app_with_data(storage, args.app, "metrics")
        _not_after(app, args.period.last, ended=True)
        local = not storage.uri.startswith("s3://")
        base_url = args.dashboard_url or (LOCAL_API_URL if local else None)
        links = None
        if base_url and (local or args.secret_id or os.environ.get("MINIDRAMA_READ_SECRET")):
            links = DashboardLinks(
                base_url, _read_secret(storage, args.secret_id, create=True), args.link_days
            )
        return report_command(storage, app, args.period, args.email_to, links)
    if args.command == "serve":
        from minidrama.server import serve

        serve(
            storage,
            host=args.host,
            port=args.port,
            workers=args.workers or os.cpu_count() or 1,
            flush_seconds=args.flush_seconds or None,
        )
        return 0
    raise AssertionError(f"unhandled command {args.command}")
