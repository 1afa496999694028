"""schemathesis against a live `minidrama serve` on a temporary lake: 0 failures.

Every check (`--checks all`), the examples, coverage and fuzzing phases, a fixed seed, every
route of openapi.yaml; once with the ingest key and a read token of a registered app whose days
of the document's examples are computed (tests/e2e/schemathesis.toml names the app), and once
without either. The command is the README's, with the server's URL, the key and the token filled in.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from minidrama.config import get_app
from minidrama.ingestion import ingest_events
from minidrama.lake import LocalStorage
from minidrama.metrics import compute_days
from minidrama.simulator import simulate
from tests.e2e.serving import cli, register, serving

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "layers/minidrama/minidrama/openapi.yaml"
CONFIG = Path(__file__).with_name("schemathesis.toml")
APP = "schemathesis-app"  # as in schemathesis.toml
SEED = 20261128
MAX_EXAMPLES = 200
# The days of the document's examples for `from` and `to` (openapi.yaml), so that its examples read.
COMPUTED = [date(2026, 11, 22) + timedelta(days=offset) for offset in range(7)]


def schemathesis_command(url: str, key: str | None, token: str | None) -> list[str]:
    command = [str(Path(sys.executable).with_name("schemathesis"))]
    if key is not None:
        command += ["--config-file", str(CONFIG)]
    command += ["run", str(OPENAPI), "--url", url, "--checks", "all", "--phases", "examples,coverage,fuzzing"]
    command += ["--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES), "--generation-database", "none"]
    command += ["--no-color"]
    command += ["-H", f"x-api-key: {key}"] if key is not None else []
    return command + (["-H", f"Authorization: Bearer {token}"] if token is not None else [])


def computed_lake(lake: Path) -> str:
    """Register APP, compute the days of the document's examples; returns its ingest key."""
    key = register(lake, APP)
    storage = LocalStorage(lake)
    app = get_app(storage, APP)
    assert app is not None
    for _day, events in simulate(COMPUTED[0], len(COMPUTED), seed=SEED, new_users_per_day=4):
        ingest_events(storage, app, events, received_at=datetime(2026, 11, 30, tzinfo=UTC))
    compute_days(storage, app, COMPUTED)
    return key


@pytest.mark.parametrize("with_key", [True, False], ids=["with a valid key", "without a key"])
def test_schemathesis_finds_no_failure(tmp_path: Path, with_key: bool) -> None:
    # GIVEN `minidrama serve` on a new lake with the app registered, a week of it computed
    lake = tmp_path / "lake"
    key = computed_lake(lake)
    token = json.loads(cli("apps", "token", APP, "--lake", str(lake)))["token"]
    with serving(lake) as served:
        # WHEN schemathesis runs every check against it (from a directory with no config of its own)
        done = subprocess.run(
            schemathesis_command(served.url, key if with_key else None, token if with_key else None),
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
    report = done.stdout + done.stderr
    # THEN it found nothing, having run a real number of cases in all three phases
    assert done.returncode == 0, report[-6000:]
    assert "FAILURES" not in report and "Failures:" not in report, report[-6000:]
    if with_key:  # every operation got past authentication (schemathesis warns of those that did not)
        assert "Authentication failed" not in report, report[-3000:]
    for phase in ("Examples", "Coverage", "Fuzzing"):
        assert re.search(rf"✅ {phase}", report), report[-3000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", report)
    assert cases is not None, report[-3000:]
    generated, passed = int(cases[1]), int(cases[2])
    assert generated >= MAX_EXAMPLES and passed == generated, cases[0]
    print(f"\nschemathesis {'with' if with_key else 'without'} a key: {cases[0]}")
