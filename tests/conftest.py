"""Shared fixtures: trigger files from events/, a Lambda context stand-in, lakes, handlers."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from minidrama.lake import LocalStorage

ROOT = Path(__file__).resolve().parent.parent


def load_event(name: str) -> dict[str, Any]:
    """A sample trigger from events/ (e.g. ``load_event("ingest_request")``)."""
    return json.loads((ROOT / "events" / f"{name}.json").read_text())


def load_handler(function: str) -> ModuleType:
    """Import functions/<function>/app.py as Lambda would, under a unique module name.

    Environment variables and AWS mocks must be in place before the call: the module
    creates its clients at import time, as a Lambda handler does.
    """
    path = ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"function_{function}_app", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture
def lake(tmp_path: Path) -> LocalStorage:
    """An empty local lake."""
    return LocalStorage(tmp_path / "lake")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region so boto3 under moto never reaches AWS."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "MiniDrama",
        "POWERTOOLS_SERVICE_NAME": "minidrama-test",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def no_retry_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retries without their backoff sleeps; the list holds the delays it asked for."""
    import time as real_time

    import botocore.endpoint

    delays: list[float] = []

    class Time:
        @staticmethod
        def sleep(seconds: float) -> None:
            delays.append(seconds)

        time = staticmethod(real_time.time)

    monkeypatch.setattr(botocore.endpoint, "time", Time)
    return delays


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures of the fault-injection tests (``tests/faults.py``), summed over every test run."""
    totals: dict[str, int] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            for name, value in getattr(report, "user_properties", ()):
                if name.startswith("fault_"):
                    totals[name] = totals.get(name, 0) + int(value)
    if totals:
        emails = totals.get("fault_emails_twice")
        terminalreporter.write_line(
            f"fault injection: {totals['fault_cases']:,} cases run, {totals['fault_faults']:,} faults"
            f" injected, {totals['fault_lost']} events lost, {totals['fault_doubled']} counted twice"
            + (
                f"; {emails} report emails sent twice (SES accepted, its marker not written)"
                if emails is not None
                else ""
            )
        )
