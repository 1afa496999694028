"""The report's edges: read the metrics documents from the lake, store the report, mark its status.

A report's files live under its period's partition (:class:`~minidrama.report.period.ReportPeriod`):
``reports/app_id={app}/dt={D}/``, ``…/week={YYYY-Www}/`` or ``…/month={YYYY-MM}/`` holds
``report.html``, ``report.pdf``, ``report.eml`` (local runs), ``status.json`` (``complete``,
``incomplete`` or ``no_events``, with the reason) and ``sent/`` (one marker per recipient the
report was emailed to, see :mod:`minidrama.report.delivery`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from minidrama.config import AppConfig, app_or_default, load_apps
from minidrama.dashboard import DashboardLinks
from minidrama.lake import NotFoundError, Storage, metrics_key
from minidrama.metrics.schema import read_document
from minidrama.report.delivery import DeliveryError, DeliveryResult, deliver_report
from minidrama.report.email import build_email
from minidrama.report.health import DEFAULT_RECOMPUTE_DAYS, read_data_health
from minidrama.report.model import MissingMetricsError, PeriodDocuments, ReportInputError, window_days
from minidrama.report.period import ReportPeriod, as_period
from minidrama.report.render import RenderedReport, build_period_report, build_report

__all__ = [
    "ReportRequest",
    "PublishResult",
    "load_documents",
    "load_period_documents",
    "store_report",
    "write_status",
    "publish_report",
    "report_command",
    "report_requests",
    "latest_complete_day",
    "due_periods",
    "LOCAL_SENDER",
]

logger = logging.getLogger(__name__)

LOCAL_SENDER = "Mini Drama Analytics <reports@localhost>"
SCHEDULE_EVERY = timedelta(hours=1)  # how often the scheduled runs come (template.yaml's schedules)


@dataclass(frozen=True)
class ReportRequest:
    app: AppConfig
    period: ReportPeriod

    @property
    def day(self) -> date:
        """The report's last day (its day, for a daily report)."""
        return self.period.last


@dataclass
class PublishResult:
    """What happened to one (app, period): ``complete`` with the stored keys, or ``incomplete`` or
    ``no_events`` and why."""

    app_id: str
    period: ReportPeriod
    status: str
    reason: str | None = None
    keys: dict[str, str] = field(default_factory=dict)
    delivery: DeliveryResult | None = None

    @property
    def day(self) -> date:
        return self.period.last

    def summary(self) -> dict[str, Any]:
        body: dict[str, Any] = {"app_id": self.app_id, **_period_fields(self.period), "status": self.status}
        if self.reason:
            body["reason"] = self.reason
        if self.delivery is not None:
            body["emails"] = self.delivery.summary()
        return body


def _period_fields(period: ReportPeriod) -> dict[str, str]:
    """How a status or a summary names its period: ``date`` for a day; else the report, period and days."""
    if period.kind == "daily":
        return {"date": period.label}
    return {
        "report": period.kind,
        "period": period.label,
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
    }


def _read_document(storage: Storage, key: str) -> dict[str, Any] | None:
    try:
        raw = storage.get_bytes(key)
    except NotFoundError:
        return None
    try:
        return read_document(raw)
    except ValueError as error:  # not JSON, or a schema_version this reader does not know
        raise ReportInputError(f"{key}: {error}") from error


def load_documents(storage: Storage, app_id: str, day: date) -> dict[date, dict[str, Any] | None]:
    """The metrics documents of the report's window (the day and the 30 before); None where missing."""
    return {
        window_day: _read_document(storage, metrics_key(app_id, window_day))
        for window_day in window_days(day)
    }


def load_period_documents(storage: Storage, app_id: str, period: ReportPeriod) -> PeriodDocuments:
    """What the weekly or monthly report of ``period`` reads: its range document, the previous
    period's and the daily documents of its days (None where missing)."""
    return PeriodDocuments(
        document=_read_document(storage, period.metrics_key(app_id)),
        previous=_read_document(storage, period.previous().metrics_key(app_id)),
        daily={day: _read_document(storage, metrics_key(app_id, day)) for day in period.days},
    )


def store_report(storage: Storage, report: RenderedReport) -> dict[str, str]:
    """Write ``report.html`` and ``report.pdf``; returns their keys by kind."""
    keys = {
        "html": report.period.report_key(report.app_id, "report.html"),
        "pdf": report.period.report_key(report.app_id, "report.pdf"),
    }
    storage.put_bytes(keys["html"], report.html.encode("utf-8"), "text/html; charset=utf-8")
    storage.put_bytes(keys["pdf"], report.pdf, "application/pdf")
    return keys


def write_status(
    storage: Storage, app_id: str, period: ReportPeriod | date, status: Mapping[str, Any]
) -> str:
    """Write the report's ``status.json``; returns its key."""
    period = as_period(period)
    key = period.report_key(app_id, "status.json")
    body = {
        "app_id": app_id,
        **_period_fields(period),
        "updated_at": datetime.now(UTC).isoformat(),
        **status,
    }
    storage.put_bytes(key, json.dumps(body, indent=2).encode(), "application/json")
    return key


def _render(
    storage: Storage, app: AppConfig, period: ReportPeriod, links: DashboardLinks | None
) -> RenderedReport | PublishResult:
    """The rendered report, or (already recorded in ``status.json``) an ``incomplete`` result when
    its inputs are missing, or a ``no_events`` one for a day or period without any event: never a
    report of zeros."""
    status = "incomplete"
    try:
        documents: Mapping[date, Mapping[str, Any] | None] | PeriodDocuments
        own: Mapping[str, Any] | None
        if period.kind == "daily":
            documents = load_documents(storage, app.app_id, period.last)
            own = documents.get(period.last)
        else:
            documents = load_period_documents(storage, app.app_id, period)
            own = documents.document
        if own is not None and set(own.get("segments", {})) == {"all"}:
            # Every event of a known name makes an os: and a region: segment: none came.
            status = "no_events"
            reason = f"no events were received for {period.label} (in {app.timezone})"
        else:
            link = (
                links.for_range(app.app_id, period.first, period.last, datetime.now(UTC))
                if links is not None
                else None
            )
            health = read_data_health(
                storage,
                app.app_id,
                period.last,
                timezone=app.timezone,
                recompute_days=int(os.environ.get("RECOMPUTE_DAYS", DEFAULT_RECOMPUTE_DAYS)),
                first=period.first,
            )
            if isinstance(documents, PeriodDocuments):
                return build_period_report(app.app_id, period, documents, link, health=health)
            return build_report(app.app_id, period.last, documents, link, health=health)
    except MissingMetricsError:
        reason = f"no metrics document at {period.metrics_key(app.app_id)}"
    except ReportInputError as error:
        reason = str(error)
    write_status(storage, app.app_id, period, {"status": status, "reason": reason})
    logger.warning("%s of %s for %s is %s: %s", period.title, app.app_id, period.label, status, reason)
    return PublishResult(app.app_id, period, status, reason)


def publish_report(
    storage: Storage,
    app: AppConfig,
    period: ReportPeriod | date,
    *,
    sender: str,
    ses_client: Any,
    default_recipients: Sequence[str] = (),
    links: DashboardLinks | None = None,
) -> PublishResult:
    """Render, store and email (through SES) the report of ``app`` for ``period`` (a day is its
    daily report).

    Recipients are the app's, or ``default_recipients`` for an app that lists none. With
    ``links``, the email links to the day on the dashboard (a read token valid ``links.days``).

    Missing inputs give an ``incomplete`` status and no email. Emails already sent for this
    (app, period, recipient) are not sent again. Raises :class:`DeliveryError` when SES refused some.
    """
    period = as_period(period)
    rendered = _render(storage, app, period, links)
    if isinstance(rendered, PublishResult):
        return rendered
    keys = store_report(storage, rendered)
    recipients = list(app.recipients) or list(default_recipients)
    status: dict[str, Any] = {
        "status": "complete",
        "files": keys,
        "missing_days": _isoformat(rendered.missing_days),
    }
    try:
        delivery = deliver_report(storage, rendered, sender, recipients, ses_client)
    except DeliveryError as error:
        emails = error.result.summary() if error.result else {}
        write_status(storage, app.app_id, period, {**status, "emails": emails, "error": str(error)})
        raise
    keys["status"] = write_status(storage, app.app_id, period, {**status, "emails": delivery.summary()})
    return PublishResult(app.app_id, period, "complete", keys=keys, delivery=delivery)


def _isoformat(days: Sequence[date]) -> list[str]:
    return [day.isoformat() for day in days]


def report_command(
    storage: Storage,
    app: AppConfig,
    period: ReportPeriod | date,
    email_to: Sequence[str] | None,
    links: DashboardLinks | None = None,
) -> int:
    """``minidrama report``: render HTML and PDF, write the email as ``report.eml``.

    Recipients are ``email_to``, else the app's; with none, the .eml is still written, addressed
    to the empty group ``undisclosed-recipients:;``. Where SES is configured — the environment
    names a verified sender in ``MINIDRAMA_SES_SENDER`` — the email is also sent through SES to
    each recipient, once per (app, period, recipient) like the report function's. Exit 2 when the
    metrics are missing, 1 when SES refused a recipient.
    """
    period = as_period(period)
    rendered = _render(storage, app, period, links)
    if isinstance(rendered, PublishResult):
        print(
            f"minidrama: cannot report {app.app_id} for {period.label}: {rendered.reason}; "
            + _advice(app, period, rendered.status),
            file=sys.stderr,
        )
        return 2
    keys = store_report(storage, rendered)
    recipients = list(email_to) if email_to else list(app.recipients)
    sender = os.environ.get("SENDER_EMAIL") or LOCAL_SENDER
    keys["eml"] = period.report_key(app.app_id, "report.eml")
    storage.put_bytes(keys["eml"], build_email(rendered, sender, recipients).as_bytes(), "message/rfc822")
    write_status(
        storage,
        app.app_id,
        period,
        {
            "status": "complete",
            "files": keys,
            "missing_days": _isoformat(rendered.missing_days),
            "emails": "eml",
        },
    )
    root = storage.uri.rstrip("/")
    for kind in ("html", "pdf", "eml"):
        print(f"{root}/{keys[kind]}")
    ses_sender = os.environ.get("MINIDRAMA_SES_SENDER")
    if ses_sender and recipients:
        import boto3

        try:
            delivery = deliver_report(storage, rendered, ses_sender, recipients, boto3.client("ses"))
        except DeliveryError as error:
            print(f"minidrama: {error}", file=sys.stderr)
            return 1
        summary = delivery.summary()
        print(f"emailed through SES: {summary['sent']} sent, {summary['already_sent']} sent before")
    if rendered.missing_days:
        print(
            f"minidrama: note: no metrics for {len(rendered.missing_days)} earlier day(s) of the report's "
            f"window: {', '.join(_isoformat(rendered.missing_days))}",
            file=sys.stderr,
        )
    return 0


def _advice(app: AppConfig, period: ReportPeriod, status: str) -> str:
    if status == "no_events":
        return "nothing to report: check that the app sends events to this lake"
    if period.kind == "daily":
        return f"compute it first (minidrama compute --app {app.app_id} --date {period.label})"
    return (
        f"compute its days first (minidrama compute --app {app.app_id} --date {period.first.isoformat()} "
        f"--to {period.last.isoformat()}): the {period.noun}'s document is written once every day of it is"
    )


def latest_complete_day(app: AppConfig, now: datetime) -> date:
    """Yesterday in the app's time zone: the last calendar day that has ended there."""
    return app.complete_days(now, 1)[0]


def report_requests(
    storage: Storage, event: Mapping[str, Any], now: datetime, every: timedelta = SCHEDULE_EVERY
) -> list[ReportRequest]:
    """What a trigger asks for.

    A scheduled event (EventBridge, every ``every``) means: each registered app whose
    ``report_hour`` began in its own time zone since the previous run (see
    :meth:`~minidrama.config.AppConfig.hour_began`: exactly once a local day, DST and :30/:45
    zones included) gets the reports its ``reports`` setting asks for that are due that local
    day: ``daily`` for its previous day; ``weekly`` on Mondays, for the ISO week that ended
    on Sunday; ``monthly`` on the 1st, for the month before. Later that local day, a report
    still ``incomplete`` because its metrics were missing is tried again on every run (they may
    have come since). The time is the event's ``time`` (else ``now``), so a delayed or retried
    invocation decides the same.

    ``{"app_id": A}`` and/or ``{"date": "YYYY-MM-DD"}`` (top level, or under ``detail``) ask
    for one app's and/or one day's daily report explicitly, whatever the hour: the app's
    yesterday by default; ``{"week": "2026-W48"}`` or ``{"month": "2026-11"}`` ask for that
    weekly or monthly report instead. An explicit app that was never registered is reported
    with the default settings (and no recipients).
    """
    detail: Mapping[str, Any] = event["detail"] if isinstance(event.get("detail"), Mapping) else {}
    if isinstance(event.get("time"), str):
        try:
            now = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        except ValueError as error:
            raise ValueError(f"time {event['time']!r} in the trigger is not an RFC 3339 timestamp") from error

    def asked(name: str) -> str | None:
        value = event.get(name) or detail.get(name)
        return None if value is None else str(value)

    app_id = asked("app_id")
    explicit = _explicit_period(asked("date"), asked("week"), asked("month"))
    if app_id is not None or explicit is not None:
        apps = [app_or_default(storage, app_id)] if app_id is not None else list(load_apps(storage).values())
        return [
            ReportRequest(app, explicit or ReportPeriod.day(latest_complete_day(app, now))) for app in apps
        ]
    return [
        ReportRequest(app, period)
        for app in load_apps(storage).values()
        for period in _due_periods(storage, app, now, every)
    ]


def _explicit_period(day: str | None, week: str | None, month: str | None) -> ReportPeriod | None:
    given = [name for name, value in (("date", day), ("week", week), ("month", month)) if value is not None]
    if len(given) > 1:
        raise ValueError(f"the trigger names {' and '.join(given)}: ask for one report at a time")
    if day is not None:
        try:
            return ReportPeriod.day(date.fromisoformat(day))
        except ValueError as error:
            raise ValueError(f"date {day!r} in the trigger is not a date like 2026-11-28") from error
    if week is not None:
        return ReportPeriod.parse_week(week)
    if month is not None:
        return ReportPeriod.parse_month(month)
    return None


def due_periods(app: AppConfig, today: date) -> list[ReportPeriod]:
    """The reports of ``app`` due on its local day ``today``: yesterday's daily report; on a
    Monday the week that ended yesterday; on the 1st the month that ended yesterday; each only if
    the app's ``reports`` setting asks for it."""
    yesterday = today - timedelta(days=1)
    due = {
        "daily": True,
        "weekly": today.isoweekday() == 1,
        "monthly": today.day == 1,
    }
    return [ReportPeriod.of(kind, yesterday) for kind in app.reports if due.get(kind)]


def _due_periods(storage: Storage, app: AppConfig, now: datetime, every: timedelta) -> list[ReportPeriod]:
    """The reports an hourly run sends for ``app``: those due today when its report hour began in
    this run; later that day, those still waiting for their metrics."""
    began = app.hour_began(app.report_hour, now, every)
    if began is not None:
        return due_periods(app, began)
    local = now.astimezone(app.zone)
    if local.hour < app.report_hour:
        return []
    return [period for period in due_periods(app, local.date()) if _waiting_for_metrics(storage, app, period)]


def _waiting_for_metrics(storage: Storage, app: AppConfig, period: ReportPeriod) -> bool:
    try:
        status = json.loads(storage.get_bytes(period.report_key(app.app_id, "status.json")))
    except NotFoundError:
        return False
    return status.get("status") == "incomplete" and str(status.get("reason", "")).startswith("no metrics")
