"""The daily, weekly and monthly reports: metrics documents in; an HTML page, an A4 PDF and an email out.

Modules, pure core first:

- :mod:`~minidrama.report.format` — numbers as a reader sees them ("—" for unknown, never 0).
- :mod:`~minidrama.report.period` — what a report covers: a day, an ISO week, a month.
- :mod:`~minidrama.report.documents` — the metrics documents' shapes, as the report reads them.
- :mod:`~minidrama.report.model` — the view model built from the documents of the day or the period.
- :mod:`~minidrama.report.charts` — Vega-Lite specs, rendered by vl-convert (SVG, PNG).
- :mod:`~minidrama.report.render` — Jinja2 HTML, WeasyPrint PDF, plain text: :func:`build_report`.
- :mod:`~minidrama.report.email` — the MIME message.
- :mod:`~minidrama.report.delivery` — SES sending, once per (app, day, recipient).
- :mod:`~minidrama.report.publish` — lake I/O, the CLI command and the scheduled trigger.

Nothing here imports pyarrow: the report function's layer doesn't ship it.
"""

from __future__ import annotations

from minidrama.report.delivery import DeliveryError, DeliveryResult, deliver_report, sent_marker_key
from minidrama.report.email import NO_RECIPIENTS, build_email
from minidrama.report.model import MissingMetricsError, ReportInputError, ReportView, build_view, window_days
from minidrama.report.publish import (
    PublishResult,
    ReportRequest,
    latest_complete_day,
    load_documents,
    publish_report,
    report_command,
    report_requests,
    store_report,
    write_status,
)
from minidrama.report.render import RenderedReport, build_report

__all__ = [
    "DeliveryError",
    "DeliveryResult",
    "MissingMetricsError",
    "NO_RECIPIENTS",
    "PublishResult",
    "RenderedReport",
    "ReportInputError",
    "ReportRequest",
    "ReportView",
    "build_email",
    "build_report",
    "build_view",
    "deliver_report",
    "latest_complete_day",
    "load_documents",
    "publish_report",
    "report_command",
    "report_requests",
    "sent_marker_key",
    "store_report",
    "window_days",
    "write_status",
]
