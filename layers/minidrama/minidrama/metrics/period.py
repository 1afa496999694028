"""What a document covers: one day (SPEC section 6) or a range of days (section 7), as pure values.

A :class:`Period` carries the parameters the metric definitions need beyond its first and last
day: which (cohort day, offset) pairs retention measures and which cohorts and revenue windows
LTV sums. A day's retention and LTV look back from D; a range's look forward from each day of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from minidrama.metrics.exceptions import InvalidRange

__all__ = [
    "Period",
    "RetentionPair",
    "LtvWindow",
    "CalendarPeriod",
    "RETENTION_DAYS",
    "LTV_DAYS",
    "days_of",
    "range_days",
    "calendar_periods",
]

RETENTION_DAYS = (1, 7, 14, 30)
LTV_DAYS = (0, 7, 30)


def days_of(first: date, last: date) -> list[date]:
    """Every calendar day from ``first`` through ``last``."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def range_days(first: date, last: date) -> list[date]:
    """The days of the range [first, last]; :class:`InvalidRange` when it starts after it ends."""
    if first > last:
        raise InvalidRange(f"the range starts on {first.isoformat()}, after its last day {last.isoformat()}")
    return days_of(first, last)


@dataclass(frozen=True)
class RetentionPair:
    """Members of the cohort of ``cohort_date`` who launched on ``cohort_date + offset``."""

    cohort_date: date
    offset: int

    @property
    def return_date(self) -> date:
        return self.cohort_date + timedelta(days=self.offset)


@dataclass(frozen=True)
class LtvWindow:
    """Part of one LTV cohort: the users whose first launch ever is on ``cohort_date`` and who
    launched in the segment on a day of [``active_from``, ``active_to``], and the days
    [``revenue_from``, ``revenue_to``] whose recharge orders (any segment) count as their revenue.

    ``active_from`` is never after ``cohort_date`` (no one launches before their first launch), so
    the definition need only check a user's first launch in the segment against the span."""

    label: str
    cohort_date: date
    active_from: date
    active_to: date
    revenue_from: date
    revenue_to: date


@dataclass(frozen=True)
class Period:
    kind: Literal["day", "range"]
    first: date
    last: date
    retention_pairs: tuple[RetentionPair, ...]
    ltv_windows: tuple[LtvWindow, ...]
    # A range whose days' stored retention counts agree (minidrama.metrics.facts: ``retention``)
    # reads them instead of working retention out from the launches.
    stored_retention: bool = False
    # A range whose users and entry points are bound as ``user_spans`` and ``entry_spans`` (span
    # rollups and single days, minidrama.metrics.spans) rather than read from every day; only
    # with stored retention, since working it out needs each day's launches.
    spans: bool = False

    @classmethod
    def day(cls, day: date) -> Period:
        """Day D: retention dN of the cohort of D - N returning on D; LTV dN of the new users of
        D - N, their revenue from D - N through D."""
        back = {offset: day - timedelta(days=offset) for offset in (*RETENTION_DAYS, *LTV_DAYS)}
        return cls(
            "day",
            day,
            day,
            tuple(RetentionPair(back[offset], offset) for offset in RETENTION_DAYS),
            tuple(
                LtvWindow(f"d{offset}", back[offset], back[offset], back[offset], back[offset], day)
                for offset in LTV_DAYS
            ),
        )

    @classmethod
    def range(cls, first: date, last: date) -> Period:
        """R = [first, last]: retention rows for every cohort day C of R with C + N <= last; LTV of
        the new users of R (``range``: revenue over R; dN: users with C + N <= last, over C..C+N)."""
        days = range_days(first, last)
        pairs = tuple(
            RetentionPair(cohort, offset)
            for cohort in days
            for offset in RETENTION_DAYS
            if cohort + timedelta(days=offset) <= last
        )
        windows = [LtvWindow("range", cohort, first, last, first, last) for cohort in days]
        windows += [
            LtvWindow(f"d{offset}", cohort, first, last, cohort, cohort + timedelta(days=offset))
            for offset in LTV_DAYS
            for cohort in days
            if cohort + timedelta(days=offset) <= last
        ]
        return cls("range", first, last, pairs, tuple(windows))

    @property
    def days(self) -> list[date]:
        return days_of(self.first, self.last)

    @property
    def retention_cohort_days(self) -> list[date]:
        """The cohort days retention measures: a day's D - N, or every day of a range (a row each,
        with its size, even where no dN is measured yet)."""
        if self.kind == "range":
            return self.days
        return sorted({pair.cohort_date for pair in self.retention_pairs})

    @property
    def cohort_days(self) -> list[date]:
        """The days whose launches retention and LTV read: cohort days and return days."""
        needed = {pair.cohort_date for pair in self.retention_pairs}
        needed |= {pair.return_date for pair in self.retention_pairs}
        needed |= {window.cohort_date for window in self.ltv_windows}
        return sorted(needed | set(self.days))


@dataclass(frozen=True)
class CalendarPeriod:
    """An ISO week (Monday to Sunday, ``2026-W48``) or a calendar month (``2026-11``)."""

    kind: Literal["week", "month"]
    label: str
    first: date
    last: date


def week_of(day: date) -> CalendarPeriod:
    year, week, weekday = day.isocalendar()
    monday = day - timedelta(days=weekday - 1)
    return CalendarPeriod("week", f"{year}-W{week:02d}", monday, monday + timedelta(days=6))


def month_of(day: date) -> CalendarPeriod:
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return CalendarPeriod("month", f"{day.year}-{day.month:02d}", first, following - timedelta(days=1))


def calendar_periods(days: list[date]) -> list[CalendarPeriod]:
    """The weeks and months that contain any of ``days``, weeks first, each in date order."""
    weeks = {week_of(day) for day in days}
    months = {month_of(day) for day in days}
    return sorted(weeks, key=lambda p: p.first) + sorted(months, key=lambda p: p.first)
