"""Errors of the metrics package; callers catch :class:`MetricsError`."""

from __future__ import annotations

from datetime import date

__all__ = [
    "MetricsError",
    "InvalidRange",
    "MissingDays",
    "UnknownSegment",
    "DamagedFacts",
    "UnknownMetric",
    "UnreadableEvents",
]


class MetricsError(Exception):
    """A metrics request that cannot be answered; the message says why."""


class InvalidRange(MetricsError):
    """The range's first day is after its last day."""


class MissingDays(MetricsError):
    """Days of the range were never computed, so no document can be built from complete state."""

    def __init__(self, app_id: str, days: list[date]) -> None:
        self.app_id = app_id
        self.days = days
        listed = ", ".join(day.isoformat() for day in days[:5])
        more = f" and {len(days) - 5} more" if len(days) > 5 else ""
        plural = "s were" if len(days) > 1 else " was"
        super().__init__(
            f"day{plural} never computed for app {app_id!r}: {listed}{more}; "
            f"run: minidrama compute --app {app_id} --date {days[0].isoformat()} --to {days[-1].isoformat()}"
        )


class UnknownSegment(MetricsError):
    """A requested segment has no events in the range."""


class UnknownMetric(MetricsError):
    """A requested metric path names no value of the documents."""


class DamagedFacts(MetricsError):
    """A stored facts file is missing or does not match its recorded hash."""


class UnreadableEvents(MetricsError):
    """An events file cannot be read or lacks the events columns: no document is computed from it."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(
            f"events file {key} {reason}; no document was computed from it: restore the file"
            " (or move it out of events/) and compute again"
        )
