"""Progress of long commands on standard error; standard output keeps only the result.

On a terminal, a bar (tqdm); otherwise (a log, a pipe, CI) one line each time another tenth of
the work is done, so a log shows that the command is alive without a line per item; nothing with
``quiet``. ``minidrama ingest`` counts bytes of its files, ``compute`` days.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, TextIO

__all__ = ["Progress"]

_STEPS = 10  # lines written when stderr is not a terminal


class Progress:
    """``with Progress(total, "ingest", unit="B") as progress: progress.advance(n)``."""

    def __init__(
        self,
        total: int,
        description: str,
        *,
        unit: str = "",
        quiet: bool = False,
        stream: TextIO | None = None,
    ) -> None:
        self.total = max(total, 0)
        self.description = description
        self.unit = unit
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._reported_step = 0
        self._bar: Any = None
        if not quiet and self.total and self.stream.isatty():
            from tqdm import tqdm

            scaled = unit == "B"
            self._bar = tqdm(
                total=self.total,
                desc=description,
                unit=unit or "it",
                unit_scale=scaled,
                unit_divisor=1024 if scaled else 1000,
                file=self.stream,
                leave=False,
            )

    def advance(self, amount: int = 1) -> None:
        self.done = min(self.total, self.done + amount)
        if self._bar is not None:
            self._bar.update(amount)
            return
        if self.quiet or not self.total:
            return
        step = self.done * _STEPS // self.total
        if step > self._reported_step:
            self._reported_step = step
            print(
                f"minidrama: {self.description}: {self._count(self.done)} of {self._count(self.total)}"
                f" ({step * 100 // _STEPS}%)",
                file=self.stream,
                flush=True,
            )

    def _count(self, amount: int) -> str:
        if self.unit == "B":
            return f"{amount / 1_048_576:,.1f} MiB"
        return f"{amount:,}{' ' + self.unit if self.unit else ''}"

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.close()
