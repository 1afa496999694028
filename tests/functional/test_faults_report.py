"""Faults injected into the report function's S3 and SES calls: each recipient gets the report once.

Every call a fault-free run makes (the documents read, the HTML and PDF stored, each recipient's
claim and ``sent`` marker, the status; each SES send) is failed in turn, in every mode of
``tests/faults.py`` and with every error code, and the run is retried as Lambda retries it. The
rendering (pure, and seconds of WeasyPrint) is replaced by a stand-in built from the same view
model; everything at the edges is the report function's own.

Within :data:`~minidrama.report.delivery.CLAIM_TIMEOUT` of a fault nobody gets the report twice,
and a recipient without it is named by a failing run. Once the claims of stopped runs have timed
out, everyone has it; a second email goes out only where SES accepted the email and the marker
saying so could not be written (SES has no idempotency key: at least once, never silently never).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from minidrama.config import register_app
from minidrama.lake import S3Storage, report_key
from minidrama.report import delivery, publish
from minidrama.report.model import build_view
from minidrama.report.render import RenderedReport
from tests.conftest import LambdaContext, load_handler
from tests.faults import Fault, FaultInjector, Tally, plan, rotated
from tests.report_fixtures import write_history

BUCKET = "minidrama-report-faults"
SENDER = "reports@studio.example"
DAY = date(2026, 11, 28)
RECIPIENTS = ["lead@studio.example", "finance@studio.example"]
TRIGGER = {"app_id": "dramaapp", "date": DAY.isoformat()}


def _stand_in_report(app_id: str, day: date, documents: Any, link: Any = None, **_: Any) -> RenderedReport:
    """The report as ``build_report`` returns it, without the charts and the PDF engine."""
    view = build_view(app_id, day, documents)  # refuses a day without its document, as the real one
    return RenderedReport(
        app_id=app_id,
        period=view.period,
        html=f"<html><body data-date='{day.isoformat()}'>report</body></html>",
        pdf=b"%PDF-1.7 stand-in",
        email_html="<p>report</p>",
        text=f"report of {app_id} for {day.isoformat()}",
        subject=f"{app_id}: {day.isoformat()}",
        missing_days=list(view.missing_days),
        view=view,
    )


@pytest.fixture
def report_function(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("LAKE_BUCKET", BUCKET)
    monkeypatch.setenv("SENDER_EMAIL", SENDER)
    monkeypatch.delenv("DEFAULT_RECIPIENTS", raising=False)
    monkeypatch.setattr(publish, "build_report", _stand_in_report)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        boto3.client("ses").verify_email_identity(EmailAddress=SENDER)
        storage = S3Storage(boto3.client("s3"), BUCKET)
        register_app(storage, "dramaapp", recipients=RECIPIENTS)
        write_history(storage, "dramaapp", DAY, 3)
        yield load_handler("report")


def _emails() -> Counter[str]:
    return Counter(
        message.destinations[0] for message in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    )


def _run(handler: ModuleType) -> Exception | None:
    try:
        handler.lambda_handler(dict(TRIGGER), LambdaContext())
    except Exception as error:  # noqa: BLE001 - a failed run is what Lambda retries
        return error
    return None


def _age_claims(storage: S3Storage) -> int:
    """Make every claim older than CLAIM_TIMEOUT, as it is when the next day's run or a replay
    comes: the time a run that stopped holding it had. Returns how many there were."""
    aged = 0
    for info in storage.list(report_key("dramaapp", DAY, "sent/")):
        marker = json.loads(storage.get_bytes(info.key))
        if marker["state"] == "sending":
            marker["at"] = (datetime.now(UTC) - delivery.CLAIM_TIMEOUT * 2).isoformat()
            storage.put_bytes(info.key, json.dumps(marker).encode())
            aged += 1
    return aged


def _sent_twice_is_explained(fault: Fault, s3_targets: list[str]) -> bool:
    """SES accepted the email and the ``sent`` marker saying so was not written (not the claim,
    which is a conditional put of the same key)."""
    target = s3_targets[0] if s3_targets else ""
    return (
        fault.operation == "PutObject"
        and fault.mode == "refused"
        and "/sent/" in target
        and not target.endswith(" if absent")
    )


def _cases(s3_calls: Counter[str], ses_calls: Counter[str]) -> list[tuple[Fault | None, Fault | None]]:
    # Every code where botocore's retry decides; the codes take turns where it does not.
    writes = [
        *plan(s3_calls, {"PutObject": ("once",)}),
        *rotated(plan(s3_calls, {"PutObject": ("refused", "answer-lost")})),
    ]
    reads = rotated(plan(s3_calls, {"GetObject": ("refused",)}))
    sends = plan(ses_calls, {"SendRawEmail": ("refused",)})
    # A refused send releases its claim (DeleteObjects): fault that too, as (S3 fault, SES fault).
    releases = [
        (Fault("DeleteObjects", 1, code, mode), Fault("SendRawEmail", 1, "AccessDenied"))
        for mode in ("refused", "answer-lost", "partial")
        for code in ("SlowDown", "AccessDenied")
    ]
    return [
        *((fault, None) for fault in [*writes, *reads]),
        *((None, fault) for fault in sends),
        *releases,
    ]


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_report_faults_at_every_call_never_email_twice_or_quietly_skip(
    report_function, no_retry_sleep, record_property
):
    # GIVEN the report function, and what a fault-free run stores and sends
    handler = report_function
    storage = handler.storage
    s3_faults, ses_faults = FaultInjector(storage.client), FaultInjector(handler.ses)
    assert _run(handler) is None and _emails() == Counter(RECIPIENTS)
    cases = _cases(Counter(s3_faults.calls), Counter(ses_faults.calls))
    assert s3_faults.calls["PutObject"] == 7 and ses_faults.calls["SendRawEmail"] == 2
    tally = Tally("report delivery")
    twice = 0

    for s3_fault, ses_fault in cases:
        boto3.resource("s3").Bucket(BUCKET).objects.filter(Prefix="reports/").delete()
        sent_before = _emails()
        # WHEN the Nth call of the operation goes wrong
        s3_faults.arm(s3_fault)
        ses_faults.arm(ses_fault)
        failure = _run(handler)
        fired, targets = [*s3_faults.fired, *ses_faults.fired], list(s3_faults.targets)
        s3_faults.arm(None)
        ses_faults.arm(None)
        tally.case(fired)
        fault = ses_fault or s3_fault  # the SES fault comes first where both are armed
        assert fault is not None and fired and set(fired) == {f for f in (s3_fault, ses_fault) if f}, fired

        # THEN the run failed, or botocore's retry got the call through and everyone has the report
        emails = _emails() - sent_before
        assert (failure is None) == fault.retried_by_botocore, (fault, targets, failure)
        if failure is not None and not emails and not storage.list("reports/"):
            continue  # it stopped before storing or sending anything: its retry is the fault-free run
        if failure is None:
            assert emails == Counter(RECIPIENTS), (fault, emails)
            status = json.loads(storage.get_bytes(report_key("dramaapp", DAY, "status.json")))
            assert status["status"] == "complete" and "error" not in status, fault
        # WHEN Lambda retries the run, within the claim timeout
        for _retry in range(2):
            if failure is None:
                break
            failure = _run(handler)
        emails = _emails() - sent_before
        # THEN nobody got it twice, and a recipient without it is named by a failing run
        assert max(emails.values(), default=0) <= 1, (fault, emails)
        if failure is None:
            assert emails == Counter(RECIPIENTS), (fault, emails)
        else:
            assert all(recipient in str(failure) for recipient in RECIPIENTS if recipient not in emails), (
                fault
            )

        # WHEN claims of stopped runs have timed out and the run is retried
        if failure is not None:
            assert _age_claims(storage) > 0, fault
            failure = _run(handler)
        # THEN everyone has the report; twice only where SES accepted it but its marker was not written
        assert failure is None, (fault, failure)
        emails = _emails() - sent_before
        assert set(emails) == set(RECIPIENTS), (fault, emails)
        if max(emails.values()) > 1:
            assert _sent_twice_is_explained(fault, targets) and sum(emails.values()) == 3, (fault, emails)
            twice += 1
        assert storage.exists(report_key("dramaapp", DAY, "report.pdf")), fault

    tally.record(record_property)
    record_property("fault_emails_twice", twice)
    print(f"report delivery: {twice} cases sent one recipient a second email after the claim timeout")
