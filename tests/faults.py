"""Fault injection for boto3 clients (on moto): fail the Nth call of an operation, in one of four ways.

A :class:`FaultInjector` hooks a client's botocore events (documented extension points, no
patching of the client) and counts its calls per operation. Armed with a :class:`Fault`, it
makes the call of that number go wrong:

``refused``
    the call fails and takes no effect, as when botocore's retries are exhausted or S3 refuses it
    (the error is raised before the request is sent);
``answer-lost``
    the call takes effect but its caller gets the error (S3 applied the write, the answer was a
    500 or never came);
``once``
    the first HTTP attempt takes effect and is answered with the error; botocore's own retry
    policy decides what happens next (503 and 500 are retried, 403 is not);
``partial``
    ``DeleteObjects``: the first key is not deleted and is listed in the answer's ``Errors``
    (S3 answers 200); ``SendMessageBatch``: the first entry is not enqueued and is listed in
    ``Failed`` (``partial-sender`` blames the sender; ``partial-always`` fails the first entry of
    this call and of every later one, so that the caller's own retries cannot get it through).

:func:`plan` lists the cases of a step, every call index of every operation that a fault-free run
made; :class:`Tally` counts what ran (and is reported at the end of the test run, see
``tests/conftest.py``, which also has ``no_retry_sleep``: botocore's retries without their sleeps).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

__all__ = ["CODES", "MODES", "Fault", "FaultInjector", "Tally", "plan", "rotated"]

# Error code -> HTTP status: throttling, unavailability, a server error, a refusal.
CODES = {"SlowDown": 503, "ServiceUnavailable": 503, "InternalError": 500, "AccessDenied": 403}
MODES = ("refused", "answer-lost", "once", "partial", "partial-sender", "partial-always")
_PARTIAL_OPERATIONS = {"DeleteObjects", "SendMessageBatch"}


@dataclass(frozen=True)
class Fault:
    operation: str  # botocore's operation name: PutObject, DeleteObjects, ListObjectsV2, ...
    call: int  # 1-based, among the client's calls of that operation since it was armed
    code: str
    mode: str = "refused"

    def __str__(self) -> str:
        return f"{self.operation} #{self.call} {self.code} ({self.mode})"

    def error(self) -> ClientError:
        status = CODES.get(self.code, 500)
        return ClientError(
            {
                "Error": {"Code": self.code, "Message": f"injected: {self}"},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            self.operation,
        )

    @property
    def retried_by_botocore(self) -> bool:
        """Whether botocore's retry policy gets a ``once`` fault through (5xx answers are retried)."""
        return self.mode == "once" and CODES[self.code] >= 500


def _raw(body: bytes) -> Any:
    class Raw:
        def stream(self, **_kwargs: Any) -> Iterator[bytes]:
            yield body

    return Raw()


@dataclass
class FaultInjector:
    """Counts the calls of one boto3 client per operation and makes the armed one go wrong."""

    client: Any
    calls: Counter[str] = field(default_factory=Counter)
    fault: Fault | None = None
    fired: list[Fault] = field(default_factory=list)
    # the S3 keys of the calls faults were injected into (" if absent" for a conditional put)
    targets: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        events = self.client.meta.events
        service = self.client.meta.service_model.service_id.hyphenize()
        events.register_first(f"provide-client-params.{service}", self._count)
        events.register_first(f"before-call.{service}", self._before_call)
        events.register_first(f"before-send.{service}", self._before_send)
        events.register_first(f"after-call.{service}", self._after_call)

    def arm(self, fault: Fault | None) -> None:
        """Start counting from zero, with ``fault`` (or none) to inject."""
        with self._lock:
            self.calls.clear()
            self.fault = fault
            self.fired = []
            self.targets = []

    def _fired(self, fault: Fault) -> None:
        with self._lock:
            self.fired.append(fault)

    # --- the hooks ------------------------------------------------------------------------------

    def _count(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1
            fault = self.fault
            if fault is None or fault.operation != model.name:
                return
            due = self.calls[model.name] == fault.call or (
                fault.mode == "partial-always" and self.calls[model.name] > fault.call
            )
            if not due:
                return
            context["injected"] = fault
            if "Key" in params:
                self.targets.append(params["Key"] + (" if absent" if params.get("IfNoneMatch") else ""))
        if fault.mode.startswith("partial"):
            entries = params["Delete"]["Objects"] if model.name == "DeleteObjects" else params["Entries"]
            context["injected_entry"] = entries[0]
            if len(entries) > 1:
                del entries[0]
            else:
                context["injected_alone"] = True

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        fault = context.get("injected")
        if fault is None:
            return None
        if fault.mode == "refused":
            self._fired(fault)
            raise fault.error()
        if context.get("injected_alone"):  # the only entry fails: nothing reaches the service
            return AWSResponse("https://injected", 200, {}, _raw(b"")), {"ResponseMetadata": {}}
        return None

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        fault = request.context.get("injected")
        if fault is None or fault.mode != "once" or request.context.get("injected_sent"):
            return None
        request.context["injected_sent"] = True
        self._fired(fault)
        # The service applies the request (moto handles it after this hook), the answer is the error.
        body = f"<Error><Code>{fault.code}</Code><Message>injected: {fault}</Message></Error>".encode()
        return AWSResponse(request.url, CODES[fault.code], {}, _raw(body))

    def _after_call(
        self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        fault = context.get("injected")
        if fault is None or fault.mode in ("refused", "once") or http_response.status_code >= 300:
            return  # a call that failed by itself (a missing key, say) was not injected into
        self._fired(fault)
        if fault.mode == "answer-lost":
            raise fault.error()
        if fault.mode.startswith("partial"):
            entry = context["injected_entry"]
            if fault.operation == "DeleteObjects":
                parsed.setdefault("Errors", []).append(
                    {"Key": entry["Key"], "Code": fault.code, "Message": f"injected: {fault}"}
                )
            else:
                parsed.setdefault("Failed", []).append(
                    {
                        "Id": entry["Id"],
                        "Code": fault.code,
                        "Message": f"injected: {fault}",
                        "SenderFault": fault.mode == "partial-sender",
                    }
                )


def plan(
    calls: Counter[str], modes: dict[str, Iterable[str]], codes: Iterable[str] | None = None
) -> list[Fault]:
    """Every case of a step: each call index of each operation in ``modes`` (as counted in a
    fault-free run), in each of its modes, with each of ``codes`` (default: all of :data:`CODES`);
    :func:`rotated` makes the codes take turns instead."""
    chosen = list(codes or CODES)
    faults = []
    for operation, operation_modes in modes.items():
        for call in range(1, calls[operation] + 1):
            for mode in operation_modes:
                assert mode in MODES and (not mode.startswith("partial") or operation in _PARTIAL_OPERATIONS)
                faults.extend(Fault(operation, call, code, mode) for code in chosen)
    return faults


def rotated(faults: list[Fault]) -> list[Fault]:
    """One case per (operation, call, mode) instead of one per code: the codes take turns."""
    seen: dict[tuple[str, int, str], Fault] = {}
    codes = list(CODES)
    for fault in faults:
        key = (fault.operation, fault.call, fault.mode)
        if key not in seen:
            seen[key] = Fault(fault.operation, fault.call, codes[len(seen) % len(codes)], fault.mode)
    return list(seen.values())


@dataclass
class Tally:
    """What a fault-injection test ran: cases, faults injected, events lost and counted twice."""

    step: str
    cases: int = 0
    faults: int = 0
    lost: int = 0
    doubled: int = 0
    by_operation: Counter[str] = field(default_factory=Counter)

    def case(self, fired: list[Fault]) -> None:
        self.cases += 1
        self.faults += len(fired)
        self.by_operation.update(fault.operation for fault in fired)

    def record(self, record_property: Any) -> None:
        for name in ("cases", "faults", "lost", "doubled"):
            record_property(f"fault_{name}", getattr(self, name))
        print(
            f"fault injection, {self.step}: {self.cases} cases run, {self.faults} faults injected "
            f"({dict(sorted(self.by_operation.items()))}), {self.lost} events lost,"
            f" {self.doubled} counted twice"
        )
