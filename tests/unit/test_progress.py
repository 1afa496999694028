"""Long commands show progress on stderr (a bar on a terminal, else a line per tenth); stdout the result."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from minidrama.cli import build_parser, main
from minidrama.progress import Progress


def _launch(n: int) -> str:
    return json.dumps(
        {
            "event_id": f"e-{n}",
            "event_name": "app_launch",
            "event_time": "2026-11-28T10:15:00Z",
            "user_id": f"u-{n % 50}",
            "session_id": f"s-{n}",
            "os": "ios",
            "region": "US",
            "properties": {"entry_point": "feed"},
        }
    )


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.ndjson"
    path.write_text("".join(_launch(n) + "\n" for n in range(3_000)))
    return path


@pytest.mark.parametrize(("total", "steps"), [(1000, 1000), (7, 7), (3, 3)])
def test_off_a_terminal_a_line_is_written_per_tenth_of_the_work(total: int, steps: int) -> None:
    stream = io.StringIO()
    with Progress(total, "compute", unit="days", stream=stream) as progress:
        for _ in range(steps):
            progress.advance()
    lines = stream.getvalue().splitlines()

    assert len(lines) == min(10, total)
    assert lines[-1] == f"minidrama: compute: {total:,} days of {total:,} days (100%)"


def test_quiet_writes_nothing() -> None:
    stream = io.StringIO()
    with Progress(10, "compute", quiet=True, stream=stream) as progress:
        progress.advance(10)
    assert stream.getvalue() == ""


def test_ingest_prints_progress_on_stderr_and_only_the_result_on_stdout(tmp_path, events_file, capsys):
    code = main(["ingest", "--lake", str(tmp_path / "lake"), "--app", "drama", str(events_file)])
    captured = capsys.readouterr()

    assert code == 0
    assert json.loads(captured.out) == {"accepted": 3000, "rejected": 0}
    lines = captured.err.splitlines()
    assert len(lines) == 10 and lines[-1].startswith("minidrama: ingest: ") and lines[-1].endswith("(100%)")


def test_ingest_quiet_prints_only_the_result(tmp_path, events_file, capsys):
    code = main(["ingest", "--lake", str(tmp_path / "lake"), "--app", "drama", "--quiet", str(events_file)])
    captured = capsys.readouterr()

    assert code == 0 and captured.err == "" and json.loads(captured.out)["accepted"] == 3000


def test_compute_of_several_days_shows_progress_and_prints_only_paths(tmp_path, events_file, capsys):
    lake = tmp_path / "lake"
    main(["ingest", "--lake", str(lake), "--app", "drama", "--quiet", str(events_file)])
    capsys.readouterr()

    code = main(
        ["compute", "--lake", str(lake), "--app", "drama", "--date", "2026-11-25", "--to", "2026-11-28"]
    )
    captured = capsys.readouterr()

    assert code == 0
    assert all(line.startswith(str(lake)) for line in captured.out.splitlines())
    assert captured.err.splitlines()[-1] == "minidrama: compute: 4 days of 4 days (100%)"


def test_on_a_terminal_ingest_draws_a_bar(tmp_path, events_file):
    # GIVEN stderr is a terminal (a pseudo-terminal), read while the command runs
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    command = [sys.executable, "-m", "minidrama", "ingest", "--lake", str(tmp_path / "lake"), "--app", "d"]
    process = subprocess.Popen([*command, str(events_file)], stdout=subprocess.PIPE, stderr=terminal)
    os.close(terminal)
    drawn = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the command closed the terminal (it ended)
            break
        if not chunk:
            break
        drawn += chunk
    os.close(controller)
    assert process.stdout is not None
    output = process.stdout.read()
    assert process.wait(timeout=120) == 0
    done = subprocess.CompletedProcess(command, 0, output)
    # THEN stdout is the result alone, and the terminal got a redrawn bar, not lines
    assert json.loads(done.stdout)["accepted"] == 3000
    assert b"ingest" in drawn and b"\r" in drawn and b"minidrama: ingest:" not in drawn


def test_version_and_every_subcommand_describes_itself(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0 and capsys.readouterr().out.startswith("minidrama ")

    def subcommands(parser):
        for action in parser._actions:
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                for name, sub in action.choices.items():
                    yield name, sub
                    yield from subcommands(sub)

    described = dict(subcommands(build_parser()))
    assert {
        "apps",
        "add",
        "set",
        "rotate-key",
        "token",
        "ingest",
        "compute",
        "query",
        "serve",
        "demo",
    } <= set(described)
    for name, sub in described.items():
        assert sub.description and len(sub.description) > 10, name
