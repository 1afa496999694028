"""The report email: its MIME tree, inline chart images, the PDF attachment, and sending it once."""

from __future__ import annotations

import email
import email.policy
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pypdf import PdfReader

from minidrama.report import (
    NO_RECIPIENTS,
    DeliveryError,
    build_email,
    build_report,
    deliver_report,
    window_days,
)
from minidrama.report.delivery import recipient_hash, sent_marker_key
from tests.report_fixtures import metrics_document

APP = "dramaapp"
DAY = date(2026, 11, 28)
SENDER = "Mini Drama Reports <reports@studio.example>"


@pytest.fixture(scope="module")
def report():
    return build_report(APP, DAY, {day: metrics_document(APP, day) for day in window_days(DAY)})


def parse(message_bytes: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(message_bytes, policy=email.policy.default)


def shape(part: email.message.EmailMessage) -> Any:
    """The MIME tree as nested (content type, [children]) tuples; leaves are content types."""
    if part.is_multipart():
        return (part.get_content_type(), [shape(child) for child in part.iter_parts()])
    return part.get_content_type()


def test_the_email_is_mixed_alternative_related_with_the_pdf_attached(report):
    # WHEN the email is built and parsed back
    message = parse(build_email(report, SENDER, ["ops@studio.example"]).as_bytes())
    # THEN it has the tree mail clients expect
    images = ["image/png"] * len(report.email_images)
    assert shape(message) == (
        "multipart/mixed",
        [
            ("multipart/alternative", ["text/plain", ("multipart/related", ["text/html", *images])]),
            "application/pdf",
        ],
    )
    assert len(images) == 7


def test_every_image_the_html_references_is_in_the_email_and_nothing_else(report):
    message = parse(build_email(report, SENDER, ["ops@studio.example"]).as_bytes())
    html = message.get_body(preferencelist=("html",)).get_content()
    referenced = set(re.findall(r'src="cid:([^"]+)"', html))
    related = message.get_body(preferencelist=("related",))
    attached = {
        part["Content-ID"].strip("<>"): part.get_content()
        for part in related.iter_parts()
        if part.get_content_type() == "image/png"
    }
    assert referenced == set(attached)
    # AND each is a real PNG, inline
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2000 for png in attached.values())
    assert all(
        part.get_content_disposition() == "inline"
        for part in related.iter_parts()
        if part.get_content_maintype() == "image"
    )
    # AND the HTML of the email holds no data: URIs (mail clients block them)
    assert "data:image" not in html


def test_the_attachment_is_the_report_pdf(report):
    message = parse(build_email(report, SENDER, ["ops@studio.example"]).as_bytes())
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "dramaapp-report-2026-11-28.pdf"
    pdf = PdfReader(io.BytesIO(attachment.get_content()))
    assert "Dashboard" in pdf.pages[0].extract_text()


def test_headers_and_plain_text(report):
    message = parse(build_email(report, SENDER, ["a@studio.example", "b@studio.example"]).as_bytes())
    active = metrics_document(APP, DAY)["segments"]["all"]["dashboard"]["active_users"]
    assert message["Subject"] == report.subject
    assert f"{active:,} active users" in message["Subject"]
    assert [address.addr_spec for address in message["To"].addresses] == [
        "a@studio.example",
        "b@studio.example",
    ]
    assert message["From"].addresses[0].addr_spec == "reports@studio.example"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].endswith("@studio.example>")
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "Active users" in text and f"{active:,}" in text


def test_without_recipients_the_to_header_is_the_empty_group(report):
    message = parse(build_email(report, SENDER, []).as_bytes())
    assert message["To"] == NO_RECIPIENTS
    assert message["To"].addresses == ()


# --- delivery: once per (app, day, recipient) ---------------------------------------------------


class RecordingSes:
    """A stand-in SES client (service "ses") that records what it is asked to send."""

    class meta:  # noqa: N801 - mirrors boto3's client.meta.service_model.service_name
        class service_model:  # noqa: N801
            service_name = "ses"

    def __init__(self, refuse: set[str] = frozenset()) -> None:
        self.sent: list[dict[str, Any]] = []
        self.refuse = refuse

    def send_raw_email(self, Source, Destinations, RawMessage):  # noqa: N803 - boto3's names
        if Destinations[0] in self.refuse:
            raise RuntimeError(f"MessageRejected: {Destinations[0]}")
        self.sent.append({"source": Source, "to": Destinations, "raw": RawMessage["Data"]})
        return {"MessageId": f"m-{len(self.sent)}"}


def test_each_recipient_gets_the_report_once_however_often_it_runs(lake, report):
    # GIVEN two recipients (one listed twice in another spelling)
    ses = RecordingSes()
    recipients = ["a@studio.example", "b@studio.example", " A@Studio.example "]
    # WHEN delivery runs twice
    first = deliver_report(lake, report, SENDER, recipients, ses)
    second = deliver_report(lake, report, SENDER, recipients, ses)
    # THEN each got exactly one message, addressed to them alone
    assert [item["to"] for item in ses.sent] == [["a@studio.example"], ["b@studio.example"]]
    assert [parse(item["raw"])["To"] for item in ses.sent] == ["a@studio.example", "b@studio.example"]
    assert first.sent == ["a@studio.example", "b@studio.example"]
    assert second.sent == [] and second.already_sent == ["a@studio.example", "b@studio.example"]
    # AND each has a marker naming the hash of the address, not the address
    marker = json.loads(lake.get_bytes(sent_marker_key(APP, DAY, "a@studio.example")))
    assert marker["state"] == "sent" and marker["message_id"] == "m-1"
    assert marker["recipient_sha256"] == recipient_hash("a@studio.example")
    assert "studio.example" not in json.dumps(marker)


def test_a_recipient_another_run_is_sending_to_is_left_to_it(lake, report):
    # GIVEN another run claimed the recipient a moment ago
    now = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    claim = {"state": "sending", "at": (now - timedelta(minutes=1)).isoformat()}
    assert lake.put_if_absent(sent_marker_key(APP, DAY, "a@studio.example"), json.dumps(claim).encode())
    ses = RecordingSes()
    # WHEN this run delivers
    with pytest.raises(DeliveryError, match="being sent to a@studio.example by another run") as raised:
        deliver_report(lake, report, SENDER, ["a@studio.example"], ses, now=lambda: now)
    # THEN it does not send, and fails so that it is retried instead of ending quietly
    assert ses.sent == [] and raised.value.result is not None
    assert raised.value.result.in_progress == ["a@studio.example"]
    # BUT a claim older than a send can take was left by a stopped run: it is taken over
    later = now + timedelta(minutes=4)
    result = deliver_report(lake, report, SENDER, ["a@studio.example"], ses, now=lambda: later)
    assert result.sent == ["a@studio.example"] and len(ses.sent) == 1


def test_a_refused_send_is_retried_by_the_next_run(lake, report):
    # GIVEN SES refuses one of two recipients
    ses = RecordingSes(refuse={"bad@studio.example"})
    with pytest.raises(DeliveryError, match="bad@studio.example") as raised:
        deliver_report(lake, report, SENDER, ["bad@studio.example", "ok@studio.example"], ses)
    # THEN the other one still got it, and the refused one holds no marker
    assert raised.value.result is not None and raised.value.result.sent == ["ok@studio.example"]
    assert not lake.exists(sent_marker_key(APP, DAY, "bad@studio.example"))
    # WHEN SES accepts it on the next run THEN only the missing one is sent
    ses.refuse = set()
    result = deliver_report(lake, report, SENDER, ["bad@studio.example", "ok@studio.example"], ses)
    assert result.sent == ["bad@studio.example"] and result.already_sent == ["ok@studio.example"]


def test_put_if_absent_creates_once(lake):
    assert lake.put_if_absent("reports/x/sent/1.json", b"{}") is True
    assert lake.put_if_absent("reports/x/sent/1.json", b'{"again": 1}') is False
    assert lake.get_bytes("reports/x/sent/1.json") == b"{}"
