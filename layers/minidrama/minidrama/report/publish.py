"""The report's edges: read the metrics documents from the lake, store the report, mark its status.

``reports/app_id={app}/dt={D}/`` holds ``report.html``, ``report.pdf``, ``report.eml`` (local runs),
``status.json`` (``complete`` or ``incomplete`` with the reason) and ``sent/`` (one marker per
recipient the report was emailed to, see :mod:`minidrama.report.delivery`).
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
from minidrama.lake import NotFoundError, Storage, metrics_key, report_key
from minidrama.metrics.schema import read_document
from minidrama.report.delivery import DeliveryError, DeliveryResult, deliver_report
from minidrama.report.email import build_email
from minidrama.report.health import DEFAULT_RECOMPUTE_DAYS, read_data_health
from minidrama.report.model import MissingMetricsError, ReportInputError, window_days
from minidrama.report.render import RenderedReport, build_report

__all__ = [
    "ReportRequest",
    "PublishResult",
    "load_documents",
    "store_report",
    "write_status",
    "publish_report",
    "report_command",
    "report_requests",
    "latest_complete_day",
    "LOCAL_SENDER",
]

logger = logging.getLogger(__name__)

LOCAL_SENDER = "Mini Drama Analytics <reports@localhost>"
SCHEDULE_EVERY = timedelta(hours=1)  # how often the scheduled runs come (template.yaml's schedules)


@dataclass(frozen=True)
class ReportRequest:
    app: AppConfig
    day: date


@dataclass
class PublishResult:
    """What happened to one (app, day): ``complete`` with the stored keys, or ``incomplete`` or
    ``no_events`` and why."""

    app_id: str
    day: date
    status: str
    reason: str | None = None
    keys: dict[str, str] = field(default_factory=dict)
    delivery: DeliveryResult | None = None

    def summary(self) -> dict[str, Any]:
        body: dict[str, Any] = {"app_id": self.app_id, "date": self.day.isoformat(), "status": self.status}
        if self.reason:
            body["reason"] = self.reason
        if self.delivery is not None:
            body["emails"] = self.delivery.summary()
        return body


def load_documents(storage: Storage, app_id: str, day: date) -> dict[date, dict[str, Any] | None]:
    """The metrics documents of the report's window (the day and the 30 before); None where missing."""
    documents: dict[date, dict[str, Any] | None] = {}
    for window_day in window_days(day):
        key = metrics_key(app_id, window_day)
        try:
            raw = storage.get_bytes(key)
        except NotFoundError:
            documents[window_day] = None
            continue
        try:
            documents[window_day] = read_document(raw)
        except ValueError as error:  # not JSON, or a schema_version this reader does not know
            raise ReportInputError(f"{key}: {error}") from error
    return documents


def store_report(storage: Storage, report: RenderedReport) -> dict[str, str]:
    """Write ``report.html`` and ``report.pdf``; returns their keys by kind."""
    keys = {
        "html": report_key(report.app_id, report.day, "report.html"),
        "pdf": report_key(report.app_id, report.day, "report.pdf"),
    }
    storage.put_bytes(keys["html"], report.html.encode("utf-8"), "text/html; charset=utf-8")
    storage.put_bytes(keys["pdf"], report.pdf, "application/pdf")
    return keys


def write_status(storage: Storage, app_id: str, day: date, status: Mapping[str, Any]) -> str:
    key = report_key(app_id, day, "status.json")
    body = {"app_id": app_id, "date": day.isoformat(), "updated_at": datetime.now(UTC).isoformat(), **status}
    storage.put_bytes(key, json.dumps(body, indent=2).encode(), "application/json")
    return key


def _render(
    storage: Storage, app: AppConfig, day: date, links: DashboardLinks | None
) -> RenderedReport | PublishResult:
    """The rendered report, or (already recorded in ``status.json``) an ``incomplete`` result when
    its inputs are missing, or a ``no_events`` one for a day without any event: never a report of
    zeros."""
    status = "incomplete"
    try:
        documents = load_documents(storage, app.app_id, day)
        own = documents.get(day)
        if own is not None and set(own["segments"]) == {"all"}:
            # Every event of a known name makes an os: and a region: segment: none came.
            status, reason = "no_events", f"no events were received for {day} (in {app.timezone})"
        else:
            link = links.for_day(app.app_id, day, datetime.now(UTC)) if links is not None else None
            health = read_data_health(
                storage,
                app.app_id,
                day,
                timezone=app.timezone,
                recompute_days=int(os.environ.get("RECOMPUTE_DAYS", DEFAULT_RECOMPUTE_DAYS)),
            )
            return build_report(app.app_id, day, documents, link, health=health)
    except MissingMetricsError:
        reason = f"no metrics document at {metrics_key(app.app_id, day)}"
    except ReportInputError as error:
        reason = str(error)
    write_status(storage, app.app_id, day, {"status": status, "reason": reason})
    logger.warning("report of %s for %s is %s: %s", app.app_id, day, status, reason)
    return PublishResult(app.app_id, day, status, reason)


def publish_report(
    storage: Storage,
    app: AppConfig,
    day: date,
    *,
    sender: str,
    ses_client: Any,
    default_recipients: Sequence[str] = (),
    links: DashboardLinks | None = None,
) -> PublishResult:
    """Render, store and email (through SES) the report of ``app`` for ``day``.

    Recipients are the app's, or ``default_recipients`` for an app that lists none. With
    ``links``, the email links to the day on the dashboard (a read token valid ``links.days``).

    Missing inputs give an ``incomplete`` status and no email. Emails already sent for this
    (app, day, recipient) are not sent again. Raises :class:`DeliveryError` when SES refused some.
    """
    rendered = _render(storage, app, day, links)
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
        write_status(storage, app.app_id, day, {**status, "emails": emails, "error": str(error)})
        raise
    keys["status"] = write_status(storage, app.app_id, day, {**status, "emails": delivery.summary()})
    return PublishResult(app.app_id, day, "complete", keys=keys, delivery=delivery)


def _isoformat(days: Sequence[date]) -> list[str]:
    return [day.isoformat() for day in days]


def report_command(
    storage: Storage,
    app: AppConfig,
    day: date,
    email_to: Sequence[str] | None,
    links: DashboardLinks | None = None,
) -> int:
    """``minidrama report``: render HTML and PDF, write the email as ``report.eml``.

    Recipients are ``email_to``, else the app's; with none, the .eml is still written, addressed
    to the empty group ``undisclosed-recipients:;``. Where SES is configured — the environment
    names a verified sender in ``MINIDRAMA_SES_SENDER`` — the email is also sent through SES to
    each recipient, once per (app, day, recipient) like the report function's. Exit 2 when the
    day's metrics are missing, 1 when SES refused a recipient.
    """
    rendered = _render(storage, app, day, links)
    if isinstance(rendered, PublishResult):
        advice = (
            "nothing to report: check that the app sends events to this lake"
            if rendered.status == "no_events"
            else f"compute it first (minidrama compute --app {app.app_id} --date {day.isoformat()})"
        )
        print(
            f"minidrama: cannot report {app.app_id} for {day.isoformat()}: {rendered.reason}; {advice}",
            file=sys.stderr,
        )
        return 2
    keys = store_report(storage, rendered)
    recipients = list(email_to) if email_to else list(app.recipients)
    sender = os.environ.get("SENDER_EMAIL") or LOCAL_SENDER
    keys["eml"] = report_key(app.app_id, day, "report.eml")
    storage.put_bytes(keys["eml"], build_email(rendered, sender, recipients).as_bytes(), "message/rfc822")
    write_status(
        storage,
        app.app_id,
        day,
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


def latest_complete_day(app: AppConfig, now: datetime) -> date:
    """Yesterday in the app's time zone: the last calendar day that has ended there."""
    return app.complete_days(now, 1)[0]


def report_requests(
    storage: Storage, event: Mapping[str, Any], now: datetime, every: timedelta = SCHEDULE_EVERY
) -> list[ReportRequest]:
    """What a trigger asks for.

    A scheduled event (EventBridge, every ``every``) means: each registered app whose
    ``report_hour`` began in its own time zone since the previous run, for its previous day (see
    :meth:`~minidrama.config.AppConfig.hour_began`: exactly once a local day, DST and :30/:45
    zones included); and, later that local day, an app whose report of yesterday is still
    ``incomplete`` because its metrics were missing (they may have come since). The time is the
    event's ``time`` (else ``now``), so a delayed or retried invocation decides the same.
    ``{"app_id": A}`` and/or ``{"date": "YYYY-MM-DD"}`` (top level, or under ``detail``) ask
    for one app and/or day explicitly, whatever the hour: the app's yesterday by default. An
    explicit app that was never registered is reported with the default settings (and no
    recipients).
    """
    detail: Mapping[str, Any] = event["detail"] if isinstance(event.get("detail"), Mapping) else {}
    if isinstance(event.get("time"), str):
        try:
            now = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        except ValueError as error:
            raise ValueError(f"time {event['time']!r} in the trigger is not an RFC 3339 timestamp") from error
    app_id = event.get("app_id") or detail.get("app_id")
    day_text = event.get("date") or detail.get("date")
    day: date | None = None
    if day_text is not None:
        try:
            day = date.fromisoformat(str(day_text))
        except ValueError as error:
            raise ValueError(f"date {day_text!r} in the trigger is not a date like 2026-11-28") from error
    if app_id is not None or day is not None:
        apps = (
            [app_or_default(storage, str(app_id))]
            if app_id is not None
            else list(load_apps(storage).values())
        )
        return [ReportRequest(app, day or latest_complete_day(app, now)) for app in apps]
    return [
        ReportRequest(app, due)
        for app in load_apps(storage).values()
        if "daily" in app.reports
        for due in [_due_day(storage, app, now, every)]
        if due is not None
    ]


def _due_day(storage: Storage, app: AppConfig, now: datetime, every: timedelta) -> date | None:
    """The day an hourly run reports for ``app``, or None."""
    began = app.hour_began(app.report_hour, now, every)
    if began is not None:
        return began - timedelta(days=1)
    local = now.astimezone(app.zone)
    if local.hour < app.report_hour:
        return None
    yesterday = local.date() - timedelta(days=1)
    try:
        status = json.loads(storage.get_bytes(report_key(app.app_id, yesterday, "status.json")))
    except NotFoundError:
        return None
    waiting = status.get("status") == "incomplete" and str(status.get("reason", "")).startswith("no metrics")
    return yesterday if waiting else None
