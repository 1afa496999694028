"""Calendar days in an app's time zone, and the UTC hour partitions that cover them (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["DayWindow", "day_window", "local_days_of_hour", "days_with_data"]

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class DayWindow:
    """Day ``day`` in ``timezone``: the UTC instants [start, end) and the hour partitions covering them."""

    day: date
    timezone: str
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive

    @property
    def hours(self) -> list[tuple[date, int]]:
        """(UTC date, hour) of every hour partition that overlaps the window, in order."""
        cursor = self.start.replace(minute=0, second=0, microsecond=0)
        hours = []
        while cursor < self.end:
            hours.append((cursor.date(), cursor.hour))
            cursor += HOUR
        return hours


def day_window(day: date, timezone: str) -> DayWindow:
    """The UTC window of a calendar day in ``timezone`` (23, 24 or 25 hours long around DST)."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
    return DayWindow(day, timezone, start, end)


def local_days_of_hour(utc_date: date, hour: int, timezone: str) -> set[date]:
    """The calendar days in ``timezone`` that one UTC hour partition touches (one, or two for :30 offsets)."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(utc_date, time(hour), UTC)
    last = start + HOUR - timedelta(microseconds=1)
    return {start.astimezone(zone).date(), last.astimezone(zone).date()}


def days_with_data(partitions: Iterable[tuple[date, int]], timezone: str) -> set[date]:
    """Every local calendar day touched by the given (UTC date, hour) partitions."""
    days: set[date] = set()
    for utc_date, hour in partitions:
        days |= local_days_of_hour(utc_date, hour, timezone)
    return days
