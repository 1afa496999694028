"""Fixtures of the end-to-end tests shared between modules."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

DEMO_DAYS = 35


@dataclass(frozen=True)
class DemoRun:
    out: Path
    completed: subprocess.CompletedProcess[str]

    @property
    def lake(self) -> Path:
        return self.out / "lake"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`minidrama demo --days 35` as a newcomer runs it, once for the whole run (the longest
    fixture of the suite): the first pytest-xdist worker to ask runs it under a file lock in the
    run's shared temporary directory, the others read what it wrote. Its tests only read the lake."""
    shared = tmp_path_factory.getbasetemp().parent  # the same for every worker of one run
    out, record = shared / "demo-run" / "demo-out", shared / "demo-run.json"
    with (shared / "demo-run.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            command = [sys.executable, "-m", "minidrama", "demo", "--out", str(out), "--days", str(DEMO_DAYS)]
            done = subprocess.run(command, capture_output=True, text=True, timeout=280, check=False)
            record.write_text(
                json.dumps({"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr})
            )
        saved = json.loads(record.read_text())
    completed = subprocess.CompletedProcess(
        ["minidrama", "demo"], saved["returncode"], saved["stdout"], saved["stderr"]
    )
    return DemoRun(out, completed)
