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


# --- what the email's HTML part holds, and its size -------------------------------------------

# The shape of the demo's documents, a little bigger: 2 OS and 14 region segments.
DEMO_REGIONS = ["US", "PH", "ID", "GB", "BR", "MX", "CA", "MY", "AU", "VN", "TH", "DE", "FR", "JP"]
DEMO_LIKE_SEGMENTS = ["all", "os:android", "os:ios"] + [f"region:{code}" for code in DEMO_REGIONS]
EMAIL_HTML_BUDGET = 90 * 1024


@pytest.fixture(scope="module")
def demo_like_report():
    from minidrama.dashboard import DashboardLink
    from minidrama.report.health import DataHealth, RejectionReason

    documents = {day: metrics_document(APP, day, segments=DEMO_LIKE_SEGMENTS) for day in window_days(DAY)}
    link = DashboardLink(
        f"http://127.0.0.1:8080/v1/apps/{APP}/dashboard?from=2026-11-28&to=2026-11-28#token=" + "t" * 90,
        datetime(2026, 12, 12, tzinfo=UTC),
    )
    health = DataHealth(
        DAY, "UTC", 11_532, 58, tuple(RejectionReason(f"field_{n}: must be valid", 10 - n) for n in range(5))
    )
    return build_report(APP, DAY, documents, link, health=health)


def test_the_email_html_part_stays_within_its_budget(demo_like_report):
    # GIVEN the report of 35 days of documents shaped like the demo's, with a dashboard link and
    # the data health section: THEN its HTML part, as sent, is at most 90 KB
    message = parse(build_email(demo_like_report, SENDER, ["ops@studio.example"]).as_bytes())
    html = message.get_body(preferencelist=("html",)).get_content()
    assert len(html.encode()) <= EMAIL_HTML_BUDGET, f"{len(html.encode()):,} bytes"
    # AND it leaves the page's data attributes and print rules to the page, and its styles are classes
    assert "data-metric" not in html and "@page" not in html and 'style="background' not in html


def test_the_email_shows_the_last_two_weeks_of_cohorts_and_the_one_whose_d30_came_in(demo_like_report):
    html = demo_like_report.email_html
    table = html[html.index('id="retention-new"') : html.index('id="retention-active"')]
    shown = re.findall(r'<tr><th class="label" scope="row">(\w{3} \d{2})</th>', table)
    expected = [DAY - timedelta(days=offset) for offset in [*range(1, 15), 30]]
    assert shown == [day.strftime("%b %d") for day in expected]
    # AND the page keeps all 30
    page = demo_like_report.html
    assert len(re.findall(r'data-cohort-size="new"', page)) == 30


def test_the_preheader_is_the_first_thing_in_the_body_and_hidden(demo_like_report):
    html = demo_like_report.email_html
    body = html[html.index("<body") :]
    first = re.search(r"<body[^>]*>\s*<div class=\"preheader\" style=\"([^\"]+)\">([^<&]+)", body)
    assert first is not None
    style, text = first.groups()
    assert "display:none" in style and "max-height:0" in style
    view = demo_like_report.view
    dashboard = metrics_document(APP, DAY, segments=DEMO_LIKE_SEGMENTS)["segments"]["all"]
    assert f"{dashboard['dashboard']['active_users']:,} active users" in text
    assert view is not None and f"{view.dashboard[3].text} GMV" in text and "day-1 retention" in text
    # AND the page has no preheader
    assert 'class="preheader"' not in demo_like_report.html


def test_the_plain_text_carries_every_headline_number(demo_like_report):
    text = demo_like_report.text
    view = demo_like_report.view
    assert view is not None
    for row in view.dashboard:
        assert f"  {row.label}" in text and row.text in text and row.comparisons[0].change in text, row.label
    # AND every rate says what it is of
    assert "Paying user rate, of active users" in text
    assert "Loading success rate" in text and "of launch attempts" in text
    segment = metrics_document(APP, DAY, segments=DEMO_LIKE_SEGMENTS)["segments"]["all"]
    d1 = segment["retention"]["new"]["d1"]
    assert f"{d1['retained']:,} of {d1['cohort_size']:,} new users of Nov 27" in text
    # AND the lines fit a plain-text reader
    assert max(len(line) for line in text.splitlines() if "http" not in line) <= 80


def test_trend_chart_alt_texts_hold_the_numbers_they_show(demo_like_report):
    html = demo_like_report.email_html
    alts = dict(re.findall(r'<img class="chart" src="cid:([\w-]+)@[^"]+" width="\d+" alt="([^"]+)"', html))
    assert set(alts) == {
        "users-trend",
        "duration-trend",
        "gmv-trend",
        "payers-trend",
        "gmv-by-os",
        "gmv-by-region",
        "funnel",
    }
    view = demo_like_report.view
    assert view is not None
    active = [point.active_users for point in view.trends]
    low, high = min(active), max(active)
    assert alts["users-trend"].startswith(
        f"Active users, last 31 days: {active[0]:,} → {active[-1]:,} (min {low:,}, max {high:,})"
    )
    assert "GMV, last 31 days: $" in alts["gmv-trend"]
    assert "Android" in alts["gmv-by-os"] and "%" in alts["gmv-by-os"]
    assert "Redeem order" in alts["funnel"] and "Beans" in alts["funnel"]
