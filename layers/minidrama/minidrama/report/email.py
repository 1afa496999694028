"""The report as an email: a MIME message built from a rendered report (pure; sends nothing).

Structure (what mail clients expect for an HTML mail with inline images and an attachment)::

    multipart/mixed
    ├── multipart/alternative
    │   ├── text/plain                     the headline numbers
    │   └── multipart/related
    │       ├── text/html                  the report, charts as <img src="cid:...">
    │       └── image/png × charts         Content-ID: <chart-id@report.minidrama>
    └── application/pdf                    the full report, attached
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from minidrama.report.render import RenderedReport

__all__ = ["build_email", "NO_RECIPIENTS", "pdf_filename"]

# RFC 5322's empty group: a valid To: header that names nobody (a report written locally with no recipients).
NO_RECIPIENTS = "undisclosed-recipients:;"


def pdf_filename(report: RenderedReport) -> str:
    """``demo-drama-report-2026-11-30.pdf``; ``demo-drama-weekly-report-2026-W48.pdf``."""
    kind = "" if report.period.kind == "daily" else f"{report.period.kind}-"
    return f"{report.app_id}-{kind}report-{report.period.label}.pdf"


def build_email(
    report: RenderedReport,
    sender: str,
    recipients: Sequence[str],
    *,
    sent_at: datetime | None = None,
) -> EmailMessage:
    """The report email from ``sender`` to ``recipients`` (none: the To: header is the empty group)."""
    message = EmailMessage()
    message["Subject"] = report.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients) if recipients else NO_RECIPIENTS
    message["Date"] = format_datetime(sent_at or datetime.now(UTC))
    message["Message-ID"] = make_msgid(
        idstring=f"{report.app_id}.{report.period.label}", domain=_domain(sender)
    )
    # RFC 3834: an automatic message, so auto-responders don't answer it.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(report.text)
    message.add_alternative(report.email_html, subtype="html")
    # add_alternative made the body multipart/alternative: [text/plain, text/html]
    html_part = message.get_payload()[1]  # type: ignore[index]
    for content_id, png in report.email_images.items():
        html_part.add_related(  # type: ignore[union-attr]
            png,
            maintype="image",
            subtype="png",
            cid=f"<{content_id}>",
            filename=f"{content_id.split('@')[0]}.png",
            disposition="inline",
        )
    message.add_attachment(report.pdf, maintype="application", subtype="pdf", filename=pdf_filename(report))
    return message


def _domain(address: str) -> str:
    domain = address.rpartition("@")[2].strip(" >")
    return domain or "report.minidrama"
