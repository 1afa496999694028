"""What the read and dashboard benchmarks stand on: the demo lake, a read token, `minidrama serve` on it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

APP = "demo-drama"
PYTHON = sys.executable


@dataclass(frozen=True)
class Served:
    lake: Path
    base: str  # the server's URL
    token: str  # a read token of APP


def demo_lake(lake: Path, workdir: Path) -> Path:
    """``lake`` if it holds stored facts (``make demo``'s), else a demo made once in ``workdir``."""
    if (lake / "facts").is_dir():
        return lake
    out = workdir / "demo"
    if not (out / "lake" / "facts").is_dir():
        subprocess.run(
            [PYTHON, "-m", "minidrama", "demo", "--out", str(out)], check=True, stdout=subprocess.DEVNULL
        )
    return out / "lake"


@contextmanager
def serving_demo(lake: Path, workdir: Path) -> Iterator[Served]:
    """A real `minidrama serve` (any free port) on the demo lake, and a one-day read token of it."""
    lake = demo_lake(lake, workdir)
    token = json.loads(
        subprocess.run(
            [PYTHON, "-m", "minidrama", "apps", "token", APP, "--lake", str(lake), "--days", "1"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )["token"]
    with serving(lake) as base:
        yield Served(lake, base, token)


@contextmanager
def serving(
    lake: Path, command: Sequence[str] = (PYTHON, "-m", "minidrama"), options: Sequence[str] = ()
) -> Iterator[str]:
    """``minidrama serve`` (as ``command`` starts the CLI, with ``options``) on any free port of
    ``lake``; yields its URL."""
    server = subprocess.Popen(
        [*command, "serve", "--lake", str(lake), "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        yield server.stdout.readline().split("listening on ", 1)[1].split()[0].rstrip("/")
    finally:
        server.terminate()
        server.wait(timeout=30)
