"""schemathesis against a live `minidrama serve` on a temporary lake: 0 failures.

Every check (`--checks all`), the examples, coverage and fuzzing phases, a fixed seed; once with
the key of a registered app (tests/e2e/schemathesis.toml names the app) and once without a key.
The command is the README's, with the server's URL and the key filled in.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.serving import register, serving

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "layers/minidrama/minidrama/openapi.yaml"
CONFIG = Path(__file__).with_name("schemathesis.toml")
APP = "schemathesis-app"  # as in schemathesis.toml
SEED = 20261128
MAX_EXAMPLES = 300


def schemathesis_command(url: str, key: str | None) -> list[str]:
    command = [str(Path(sys.executable).with_name("schemathesis"))]
    if key is not None:
        command += ["--config-file", str(CONFIG)]
    command += ["run", str(OPENAPI), "--url", url, "--checks", "all", "--phases", "examples,coverage,fuzzing"]
    command += ["--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES), "--generation-database", "none"]
    command += ["--no-color"]
    return command + (["-H", f"x-api-key: {key}"] if key is not None else [])


@pytest.mark.parametrize("with_key", [True, False], ids=["with a valid key", "without a key"])
def test_schemathesis_finds_no_failure(tmp_path: Path, with_key: bool) -> None:
    # GIVEN `minidrama serve` on a new lake with the app registered
    lake = tmp_path / "lake"
    key = register(lake, APP)
    with serving(lake) as served:
        # WHEN schemathesis runs every check against it (from a directory with no config of its own)
        done = subprocess.run(
            schemathesis_command(served.url, key if with_key else None),
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
    report = done.stdout + done.stderr
    # THEN it found nothing, having run a real number of cases in all three phases
    assert done.returncode == 0, report[-6000:]
    assert "FAILURES" not in report and "Failures:" not in report, report[-6000:]
    for phase in ("Examples", "Coverage", "Fuzzing"):
        assert re.search(rf"✅ {phase}", report), report[-3000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", report)
    assert cases is not None, report[-3000:]
    generated, passed = int(cases[1]), int(cases[2])
    assert generated >= MAX_EXAMPLES and passed == generated, cases[0]
    print(f"\nschemathesis {'with' if with_key else 'without'} a key: {cases[0]}")
