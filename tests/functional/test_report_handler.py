"""The report function on moto S3 + SES, and the `minidrama report` command on a local lake."""

from __future__ import annotations

import email
import email.policy
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from pypdf import PdfReader

from minidrama.config import add_app, app_or_default, register_app
from minidrama.dashboard import DashboardLinks
from minidrama.lake import LocalStorage, S3Storage, metrics_key, report_key
from minidrama.report import report_command, sent_marker_key
from minidrama.report.period import ReportPeriod
from minidrama.tokens import LakeSecret, verify_token
from tests.conftest import LambdaContext, load_event, load_handler
from tests.report_fixtures import range_document, write_history

BUCKET = "minidrama-lake"
SENDER = "reports@studio.example"
DAY = date(2026, 11, 28)  # the schedule fires 2026-11-29T06:00Z: the latest complete UTC day
RECIPIENTS = ["lead@studio.example", "finance@studio.example"]


@dataclass
class Stack:
    handler: ModuleType
    storage: S3Storage

    def run(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.handler.lambda_handler(event, LambdaContext())

    @property
    def sent(self) -> list[Any]:
        return list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)

    def status(self, app_id: str, day: date) -> dict[str, Any]:
        return json.loads(self.storage.get_bytes(report_key(app_id, day, "status.json")))


@pytest.fixture
def stack(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("LAKE_BUCKET", BUCKET)
    monkeypatch.setenv("SENDER_EMAIL", SENDER)
    monkeypatch.delenv("DEFAULT_RECIPIENTS", raising=False)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
        yield Stack(load_handler("report"), S3Storage(boto3.client("s3"), BUCKET))


def test_the_schedule_reports_yesterday_and_emails_each_recipient_once(stack):
    # GIVEN a registered app with two recipients and 35 days of metrics
    register_app(stack.storage, "dramaapp", recipients=RECIPIENTS)
    write_history(stack.storage, "dramaapp", DAY, 35)
    # WHEN the daily schedule fires
    response = stack.run(load_event("report_schedule"))
    # THEN yesterday's report is stored, as HTML and as PDF
    assert response == {
        "reports": [
            {
                "app_id": "dramaapp",
                "date": "2026-11-28",
                "status": "complete",
                "emails": {"sent": 2, "already_sent": 0, "in_progress": 0, "failed": 0},
            }
        ]
    }
    html = stack.storage.get_bytes(report_key("dramaapp", DAY, "report.html")).decode()
    assert 'data-date="2026-11-28"' in html
    pdf = PdfReader(io.BytesIO(stack.storage.get_bytes(report_key("dramaapp", DAY, "report.pdf"))))
    assert len(pdf.pages) >= 5
    # AND SES sent one message to each recipient, from the sender, with the PDF attached
    sent = stack.sent
    assert sorted(message.destinations[0] for message in sent) == sorted(RECIPIENTS)
    assert all(message.source == SENDER for message in sent)
    parsed = email.message_from_string(sent[0].raw_data, policy=email.policy.default)
    assert [part.get_content_type() for part in parsed.iter_attachments()] == ["application/pdf"]
    assert stack.status("dramaapp", DAY)["status"] == "complete"
    # WHEN the function runs again (a retry, or a second schedule)
    again = stack.run(load_event("report_schedule"))
    # THEN nobody gets it twice
    assert again["reports"][0]["emails"] == {"sent": 0, "already_sent": 2, "in_progress": 0, "failed": 0}
    assert len(stack.sent) == 2
    assert all(stack.storage.exists(sent_marker_key("dramaapp", DAY, address)) for address in RECIPIENTS)


def test_a_report_without_its_metrics_is_marked_incomplete_and_never_sent(stack):
    # GIVEN the day's metrics are missing (the days before exist, and were reported on their day)
    register_app(stack.storage, "dramaapp", recipients=RECIPIENTS)
    write_history(stack.storage, "dramaapp", DAY, 10, missing={DAY})
    stack.storage.put_bytes(report_key("dramaapp", DAY - timedelta(days=1), "report.html"), b"<html></html>")
    # WHEN the schedule fires
    response = stack.run(load_event("report_schedule"))
    # THEN the report is incomplete, with the reason, and no email went out
    [result] = response["reports"]
    assert result["status"] == "incomplete"
    assert "metrics/app_id=dramaapp/dt=2026-11-28/metrics.json" in result["reason"]
    status = stack.status("dramaapp", DAY)
    assert status["status"] == "incomplete" and status["reason"] == result["reason"]
    assert stack.sent == []
    assert not stack.storage.exists(report_key("dramaapp", DAY, "report.pdf"))


def _hourly(time: datetime) -> dict[str, Any]:
    return {**load_event("report_schedule"), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_four_apps_in_four_zones_each_get_their_report_in_their_own_morning(stack: Stack) -> None:
    # GIVEN four apps, each with its previous days' metrics
    zones = {
        "utc": "UTC",
        "la": "America/Los_Angeles",
        "kolkata": "Asia/Kolkata",
        "kathmandu": "Asia/Kathmandu",
    }
    for app_id, timezone in zones.items():
        register_app(stack.storage, app_id, timezone=timezone, recipients=[f"{app_id}@studio.example"])
        write_history(stack.storage, app_id, date(2026, 11, 28), 4, timezone=timezone)
    # WHEN the schedule fires hourly, at :20, through Nov 29 (UTC)
    runs: dict[str, list[str]] = {}
    for hour in range(24):
        run_at = datetime(2026, 11, 29, 0, 20, tzinfo=UTC) + timedelta(hours=hour)
        for result in stack.run(_hourly(run_at))["reports"]:
            runs.setdefault(result["app_id"], []).append(f"{result['date']} at {run_at:%H:%M}")
    # THEN each got its Nov 28 once, by the first run after 08:00 its time: Kathmandu 02:20 UTC
    # (08:05 there), Kolkata 03:20 UTC (08:50), UTC 08:20, Los Angeles 16:20 UTC (08:20)
    assert runs == {
        "kathmandu": ["2026-11-28 at 02:20"],
        "kolkata": ["2026-11-28 at 03:20"],
        "utc": ["2026-11-28 at 08:20"],
        "la": ["2026-11-28 at 16:20"],
    }
    assert len(stack.sent) == 4


def test_a_report_whose_metrics_came_late_is_sent_by_a_later_run_that_day(stack: Stack) -> None:
    # GIVEN an app whose day's metrics are missing at its report hour
    register_app(stack.storage, "app", recipients=["lead@studio.example"])
    write_history(stack.storage, "app", DAY, 3, missing={DAY})
    first_run = stack.run(_hourly(datetime(2026, 11, 29, 8, 20, tzinfo=UTC)))["reports"]
    assert [result["status"] for result in first_run] == ["incomplete"]
    # WHEN the metrics arrive and the next runs come
    write_history(stack.storage, "app", DAY, 1)
    later = [stack.run(_hourly(datetime(2026, 11, 29, hour, 20, tzinfo=UTC)))["reports"] for hour in (9, 10)]
    # THEN the next run sends it, and the one after has nothing to do
    assert [result["status"] for result in later[0]] == ["complete"] and later[1] == []
    assert len(stack.sent) == 1


def test_an_app_without_the_daily_report_gets_none(stack: Stack) -> None:
    add_app(stack.storage, "quiet", recipients=["lead@studio.example"], reports=["weekly"])
    write_history(stack.storage, "quiet", DAY, 3)
    assert stack.run(load_event("report_schedule")) == {"reports": []}


def test_an_app_without_recipients_goes_to_the_default_recipients(aws_env, monkeypatch):
    # GIVEN the stack's DEFAULT_RECIPIENTS and an app that lists nobody
    monkeypatch.setenv("LAKE_BUCKET", BUCKET)
    monkeypatch.setenv("SENDER_EMAIL", SENDER)
    monkeypatch.setenv("DEFAULT_RECIPIENTS", "ops@studio.example, ")
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
        stack = Stack(load_handler("report"), S3Storage(boto3.client("s3"), BUCKET))
        register_app(stack.storage, "dramaapp")
        write_history(stack.storage, "dramaapp", DAY, 2)
        # WHEN the schedule fires THEN the report goes to the default recipient
        stack.run(load_event("report_schedule"))
        assert [message.destinations[0] for message in stack.sent] == ["ops@studio.example"]


def test_a_refused_email_fails_the_run_and_is_sent_by_the_retry(stack):
    # GIVEN SES refuses the sender (its identity is not verified yet) for one of two apps
    register_app(stack.storage, "dramaapp", recipients=["lead@studio.example"])
    write_history(stack.storage, "dramaapp", DAY, 2)
    ses = boto3.client("ses")
    ses.delete_identity(Identity=SENDER)
    # WHEN the schedule fires THEN the run fails, naming the app, and its status says why
    with pytest.raises(RuntimeError, match="dramaapp"):
        stack.run(load_event("report_schedule"))
    status = stack.status("dramaapp", DAY)
    assert status["status"] == "complete" and "Did not have authority" in status["error"]
    assert stack.sent == []
    # WHEN the sender is verified and the invocation is retried THEN the email goes out, once
    ses.verify_email_identity(EmailAddress=SENDER)
    assert stack.run(load_event("report_schedule"))["reports"][0]["emails"]["sent"] == 1
    assert len(stack.sent) == 1


def test_an_explicit_app_and_date_reports_that_day(stack):
    register_app(stack.storage, "dramaapp", recipients=["lead@studio.example"])
    write_history(stack.storage, "dramaapp", date(2026, 11, 20), 5)
    response = stack.run({"app_id": "dramaapp", "date": "2026-11-20"})
    assert response["reports"][0]["date"] == "2026-11-20"
    assert response["reports"][0]["status"] == "complete"
    assert len(stack.sent) == 1


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_a_bad_date_in_the_trigger_is_named(stack):
    with pytest.raises(ValueError, match="'2026-13-01'"):
        stack.run({"app_id": "dramaapp", "date": "2026-13-01"})


def test_the_conditional_put_on_s3_lets_only_one_run_claim(stack):
    key = sent_marker_key("dramaapp", DAY, "lead@studio.example")
    assert stack.storage.put_if_absent(key, b'{"state": "sending"}') is True
    assert stack.storage.put_if_absent(key, b'{"state": "sending"}') is False


# --- minidrama report (local lake, no SES) --------------------------------------------------------


def test_report_command_writes_html_pdf_and_eml(tmp_path, capsys):
    # GIVEN a local lake with 35 days of metrics for an app that was never registered
    lake = LocalStorage(tmp_path / "lake")
    write_history(lake, "dramaapp", DAY, 35)
    # WHEN the report is made for two addresses
    code = report_command(
        lake, app_or_default(lake, "dramaapp"), DAY, ["a@studio.example", "b@studio.example"]
    )
    # THEN it prints where the HTML, the PDF and the email are, and they are there
    assert code == 0
    printed = capsys.readouterr().out.split()
    assert [line.rsplit("/", 1)[1] for line in printed] == ["report.html", "report.pdf", "report.eml"]
    assert all(Path(line).is_file() for line in printed)
    message = email.message_from_bytes(
        (tmp_path / "lake" / report_key("dramaapp", DAY, "report.eml")).read_bytes(),
        policy=email.policy.default,
    )
    assert [a.addr_spec for a in message["To"].addresses] == ["a@studio.example", "b@studio.example"]


def test_report_command_without_recipients_writes_an_undisclosed_eml(tmp_path, capsys):
    lake = LocalStorage(tmp_path / "lake")
    write_history(lake, "dramaapp", DAY, 2)
    assert report_command(lake, app_or_default(lake, "dramaapp"), DAY, None) == 0
    message = email.message_from_bytes(
        lake.get_bytes(report_key("dramaapp", DAY, "report.eml")), policy=email.policy.default
    )
    assert message["To"] == "undisclosed-recipients:;"
    # AND the 29 days without metrics are named on stderr
    assert "no metrics for 29 earlier day(s)" in capsys.readouterr().err


def test_report_command_exits_2_when_the_days_metrics_are_missing(tmp_path, capsys):
    lake = LocalStorage(tmp_path / "lake")
    assert report_command(lake, app_or_default(lake, "dramaapp"), DAY, None) == 2
    err = capsys.readouterr().err
    assert "no metrics document at metrics/app_id=dramaapp/dt=2026-11-28/metrics.json" in err
    assert "minidrama compute --app dramaapp --date 2026-11-28" in err
    assert not lake.exists(report_key("dramaapp", DAY, "report.html"))


def test_report_command_sends_through_ses_where_it_is_configured(stack, monkeypatch, capsys):
    # GIVEN a verified SES sender named to the CLI, and the day's metrics in the lake
    monkeypatch.setenv("MINIDRAMA_SES_SENDER", SENDER)
    write_history(stack.storage, "dramaapp", DAY, 3)
    app = app_or_default(stack.storage, "dramaapp")
    # WHEN the report is made twice for two addresses
    for _ in range(2):
        assert report_command(stack.storage, app, DAY, ["a@studio.example", "b@studio.example"]) == 0
    # THEN each address got one email, and the .eml is written as well
    assert sorted(message.destinations[0] for message in stack.sent) == [
        "a@studio.example",
        "b@studio.example",
    ]
    assert stack.storage.exists(report_key("dramaapp", DAY, "report.eml"))
    output = capsys.readouterr().out
    assert "emailed through SES: 2 sent, 0 sent before" in output
    assert "emailed through SES: 0 sent, 2 sent before" in output


# --- the dashboard link -------------------------------------------------------------------------


def _parts(raw: bytes | str) -> tuple[str, str]:
    """The plain-text and HTML parts of an email."""
    if isinstance(raw, str):
        message = email.message_from_string(raw, policy=email.policy.default)
    else:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def _linked_token(part: str, base_url: str, app_id: str, day: date) -> str:
    match = re.search(
        re.escape(f"{base_url}/v1/apps/{app_id}/dashboard?from={day}&to={day}#token=") + r"([\w.-]+)", part
    )
    assert match is not None, part[:2000]
    return match.group(1)


def test_the_email_links_to_its_day_on_the_dashboard_with_a_token_of_the_stacks_secret(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKE_BUCKET", BUCKET)
    monkeypatch.setenv("SENDER_EMAIL", SENDER)
    monkeypatch.setenv("DASHBOARD_BASE_URL", "https://api.example/prod")
    monkeypatch.setenv("DASHBOARD_LINK_DAYS", "5")
    with mock_aws():
        # GIVEN the stack's read secret and a registered app with metrics
        secret = boto3.client("secretsmanager").create_secret(Name="read", SecretString="s" * 64)
        monkeypatch.setenv("READ_TOKEN_SECRET_ARN", secret["ARN"])
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
        stack = Stack(load_handler("report"), S3Storage(boto3.client("s3"), BUCKET))
        register_app(stack.storage, "dramaapp", recipients=RECIPIENTS[:1])
        write_history(stack.storage, "dramaapp", DAY, 35)
        # WHEN the schedule sends the report
        stack.run(load_event("report_schedule"))
        text, html = _parts(stack.sent[0].raw_data)
        stored = stack.storage.get_bytes(report_key("dramaapp", DAY, "report.html")).decode()
    # THEN both parts link to that day's dashboard, with a token the read API takes for 5 days
    token = _linked_token(text, "https://api.example/prod", "dramaapp", DAY)
    assert _linked_token(html.replace("&amp;", "&"), "https://api.example/prod", "dramaapp", DAY) == token
    now = datetime.now(UTC)
    verified = verify_token(b"s" * 64, token, "dramaapp", now)
    assert timedelta(days=5) - timedelta(minutes=5) < verified.expires_at - now <= timedelta(days=5)
    # AND the stored page (readable by anyone who reads the bucket) carries no token
    assert "#token=" not in stored


def test_report_command_links_to_the_local_server_with_the_lakes_secret(tmp_path: Path) -> None:
    lake = LocalStorage(tmp_path / "lake")
    write_history(lake, "dramaapp", DAY, 3)
    links = DashboardLinks("http://127.0.0.1:8080", LakeSecret(lake, create=True), 2)
    assert report_command(lake, app_or_default(lake, "dramaapp"), DAY, None, links) == 0
    text, _html = _parts(lake.get_bytes(report_key("dramaapp", DAY, "report.eml")))
    token = _linked_token(text, "http://127.0.0.1:8080", "dramaapp", DAY)
    assert verify_token(LakeSecret(lake).current(), token, "dramaapp", datetime.now(UTC)).app_id == "dramaapp"
    assert "#token=" not in lake.get_bytes(report_key("dramaapp", DAY, "report.html")).decode()


# --- a day without events -----------------------------------------------------------------------


def _empty_day(storage: Any, app_id: str, day: date) -> None:
    """The day's document as `compute` writes it for a day that received no event: only `all`."""
    key = metrics_key(app_id, day)
    document = json.loads(storage.get_bytes(key))
    document["segments"] = {"all": document["segments"]["all"]}
    storage.put_bytes(key, json.dumps(document).encode(), "application/json")


def test_a_day_without_events_is_reported_to_the_operator_not_emailed_as_zeros(stack, capsys):
    # GIVEN a registered app whose day received no events
    register_app(stack.storage, "dramaapp", recipients=RECIPIENTS)
    write_history(stack.storage, "dramaapp", DAY, 5)
    _empty_day(stack.storage, "dramaapp", DAY)
    # WHEN the schedule fires
    response = stack.run(load_event("report_schedule"))
    # THEN nothing is sent, the status says why, and the run emits the metric the alarm watches
    assert [(r["status"], r["reason"]) for r in response["reports"]] == [
        ("no_events", "no events were received for 2026-11-28 (in UTC)")
    ]
    assert stack.sent == [] and stack.status("dramaapp", DAY)["status"] == "no_events"
    assert not stack.storage.exists(report_key("dramaapp", DAY, "report.html"))
    assert '"ReportsWithoutEvents":[1.0]' in capsys.readouterr().out


def test_report_command_exits_2_for_a_day_without_events(tmp_path, capsys):
    lake = LocalStorage(tmp_path / "lake")
    write_history(lake, "dramaapp", DAY, 2)
    _empty_day(lake, "dramaapp", DAY)

    assert report_command(lake, app_or_default(lake, "dramaapp"), DAY, None) == 2
    assert "no events were received for 2026-11-28" in capsys.readouterr().err
    assert not lake.exists(report_key("dramaapp", DAY, "report.eml"))


def test_on_a_monday_the_schedule_sends_the_weekly_report_once_beside_the_daily_one(stack):
    # GIVEN an app that asks for daily and weekly reports, with the daily documents of five weeks
    # and the documents of the week that ended on Sunday and of the week before
    add_app(stack.storage, "dramaapp", recipients=RECIPIENTS, reports=["daily", "weekly"])
    sunday = date(2026, 11, 29)
    write_history(stack.storage, "dramaapp", sunday, 35)
    week = ReportPeriod.week_of(sunday)
    for period in (week, week.previous()):
        document = range_document("dramaapp", period.first, period.last)
        stack.storage.put_bytes(period.metrics_key("dramaapp"), json.dumps(document).encode())
    monday = {**load_event("report_schedule"), "time": "2026-11-30T08:20:00Z"}
    # WHEN the schedule fires at the report hour of Monday
    response = stack.run(monday)
    # THEN the daily report of Sunday and the weekly report of week 48 were each sent to each
    # recipient, and stored under their own periods
    reports = response["reports"]
    assert [(report.get("date"), report.get("period"), report["status"]) for report in reports] == [
        ("2026-11-29", None, "complete"),
        (None, "2026-W48", "complete"),
    ]
    messages = [email.message_from_string(sent.raw_data, policy=email.policy.default) for sent in stack.sent]
    assert len(messages) == 4
    weekly = [message for message in messages if "weekly report 2026-W48 (Nov 23–29)" in message["Subject"]]
    assert sorted(str(message["To"]) for message in weekly) == sorted(RECIPIENTS)
    [pdf] = weekly[0].iter_attachments()
    assert pdf.get_filename() == "dramaapp-weekly-report-2026-W48.pdf"
    html = stack.storage.get_bytes(week.report_key("dramaapp", "report.html")).decode()
    assert 'data-period="weekly"' in html and 'data-date="2026-W48"' in html
    status = json.loads(stack.storage.get_bytes(week.report_key("dramaapp", "status.json")))
    assert (status["status"], status["from"], status["to"]) == ("complete", "2026-11-23", "2026-11-29")
    # WHEN the run is retried THEN nobody gets either report twice
    again = stack.run(monday)
    assert [report["emails"]["already_sent"] for report in again["reports"]] == [2, 2]
    assert len(stack.sent) == 4


def test_a_weekly_report_without_its_week_document_waits_and_is_not_sent(stack):
    add_app(stack.storage, "dramaapp", recipients=RECIPIENTS, reports=["weekly"])
    write_history(stack.storage, "dramaapp", date(2026, 11, 29), 35)
    response = stack.run({**load_event("report_schedule"), "time": "2026-11-30T08:20:00Z"})
    [report] = response["reports"]
    assert report["status"] == "incomplete"
    assert report["reason"] == "no metrics document at metrics/app_id=dramaapp/week=2026-W48/metrics.json"
    assert stack.sent == []
