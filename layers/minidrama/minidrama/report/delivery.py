"""Sending the report through Amazon SES, at most once per (app, day, recipient).

Each recipient gets their own message (so no recipient sees the others' addresses) and has a
marker object in the lake::

    reports/app_id={app}/{period}/sent/{sha256(recipient)}.json

(``{period}`` is ``dt=2026-11-30``, ``week=2026-W48`` or ``month=2026-11``: a daily, weekly and
monthly report are three reports, each sent once.)

Before sending, the marker is created with a conditional put (S3 ``If-None-Match: *``, an
exclusive create on a local lake) in state ``sending``, with a random claim token; only the run
whose put succeeds sends (a put whose answer was lost and retried finds its own token: its claim).
After SES accepts the message the marker becomes ``sent`` with SES's message id. If the send
fails the claim is removed so the next run retries. A claim left behind by a run that died
between claim and send is taken over once it is older than :data:`CLAIM_TIMEOUT`, longer than
any run may last. The marker holds a hash of the address, never the address.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from minidrama.lake import NotFoundError, Storage
from minidrama.report.email import build_email
from minidrama.report.period import ReportPeriod, as_period
from minidrama.report.render import RenderedReport

__all__ = [
    "DeliveryError",
    "DeliveryResult",
    "CLAIM_TIMEOUT",
    "sent_marker_key",
    "recipient_hash",
    "send_raw",
    "deliver_report",
]

# A claim is held only while one email is handed to SES (seconds); one older than this belongs
# to a run that stopped in between, and is taken over.
CLAIM_TIMEOUT = timedelta(minutes=3)


class DeliveryError(RuntimeError):
    """SES refused the report for one or more recipients; the message names them."""

    def __init__(self, message: str, result: DeliveryResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class DeliveryResult:
    """Who got the report in this run, who had it already, and who is being sent it by another run."""

    sent: list[str] = field(default_factory=list)
    already_sent: list[str] = field(default_factory=list)
    in_progress: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        return {
            "sent": len(self.sent),
            "already_sent": len(self.already_sent),
            "in_progress": len(self.in_progress),
            "failed": len(self.failed),
        }


def recipient_hash(recipient: str) -> str:
    """SHA-256 of the normalised address (trimmed, lower-cased): the marker's name."""
    return hashlib.sha256(recipient.strip().lower().encode()).hexdigest()


def sent_marker_key(app_id: str, period: ReportPeriod | date, recipient: str) -> str:
    return as_period(period).report_key(app_id, f"sent/{recipient_hash(recipient)}.json")


def send_raw(client: Any, sender: str, recipient: str, raw: bytes) -> str:
    """Send a raw MIME message with an SES (``send_raw_email``) or SESv2 (``send_email``) client."""
    if client.meta.service_model.service_name == "sesv2":
        response = client.send_email(
            FromEmailAddress=sender,
            Destination={"ToAddresses": [recipient]},
            Content={"Raw": {"Data": raw}},
        )
    else:
        response = client.send_raw_email(Source=sender, Destinations=[recipient], RawMessage={"Data": raw})
    return str(response["MessageId"])


def _marker(state: str, recipient: str, at: datetime, **extra: Any) -> bytes:
    body = {"state": state, "recipient_sha256": recipient_hash(recipient), "at": at.isoformat(), **extra}
    return json.dumps(body).encode()


def _read_marker(storage: Storage, key: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(storage.get_bytes(key)))
    except NotFoundError:
        return None
    except ValueError:
        return {"state": "sending", "at": None}  # being written right now by another run


def _put_claim(storage: Storage, key: str, recipient: str, now: datetime, token: str) -> bool:
    """Create the claim; also True when the marker there is this claim: S3 applied our conditional
    put but its answer was an error, and botocore's retry of it was refused (412) by our own claim."""
    if storage.put_if_absent(key, _marker("sending", recipient, now, claim=token), "application/json"):
        return True
    marker = _read_marker(storage, key)
    return marker is not None and marker.get("claim") == token


def _claim(storage: Storage, key: str, recipient: str, now: datetime) -> str:
    """``claimed``, ``sent`` (someone sent it) or ``in_progress`` (someone is sending it)."""
    token = secrets.token_hex(16)
    if _put_claim(storage, key, recipient, now, token):
        return "claimed"
    marker = _read_marker(storage, key)
    if marker is None:  # removed after a failed send between our put and our read
        return "claimed" if _put_claim(storage, key, recipient, now, token) else "in_progress"
    if marker.get("state") == "sent":
        return "sent"
    claimed_at = marker.get("at")
    if claimed_at and now - datetime.fromisoformat(claimed_at) > CLAIM_TIMEOUT:
        storage.delete([key])
        return "claimed" if _put_claim(storage, key, recipient, now, token) else "in_progress"
    return "in_progress"


def deliver_report(
    storage: Storage,
    report: RenderedReport,
    sender: str,
    recipients: Sequence[str],
    ses_client: Any,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> DeliveryResult:
    """Email the report to each recipient who hasn't had it yet; raises :class:`DeliveryError` after
    trying everyone when SES refused some (their claims are removed, so a rerun retries them)."""
    result = DeliveryResult()
    seen = set()
    for recipient in recipients:
        if recipient_hash(recipient) in seen:
            continue
        seen.add(recipient_hash(recipient))
        key = sent_marker_key(report.app_id, report.period, recipient)
        outcome = _claim(storage, key, recipient, now())
        if outcome == "sent":
            result.already_sent.append(recipient)
            continue
        if outcome == "in_progress":
            result.in_progress.append(recipient)
            continue
        message = build_email(report, sender, [recipient], sent_at=now())
        try:
            message_id = send_raw(ses_client, sender, recipient, message.as_bytes())
        except Exception as error:  # any refusal: release the claim so a later run can retry
            storage.delete([key])
            result.failed[recipient] = str(error)
            continue
        storage.put_bytes(key, _marker("sent", recipient, now(), message_id=message_id), "application/json")
        result.sent.append(recipient)
    if result.failed:
        names = "; ".join(f"{recipient}: {reason}" for recipient, reason in result.failed.items())
        raise DeliveryError(
            f"SES did not accept the report of {report.app_id} for {report.period.label}: {names}", result
        )
    if result.in_progress:
        # Not sent by this run and not known to be sent: fail, so the run is retried (and the
        # errors alarm fires if it never gets through) instead of ending quietly.
        names = ", ".join(result.in_progress)
        raise DeliveryError(
            f"the report of {report.app_id} for {report.period.label} is being sent to {names} by another run"
            f" (a claim younger than {CLAIM_TIMEOUT}); retry later",
            result,
        )
    return result
