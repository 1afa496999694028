"""What a report covers: one calendar day, an ISO week (Monday first) or a calendar month.

A daily report reads the day's metrics document (SPEC section 6); a weekly or monthly one reads
the range document of its week or month (section 7.3, written by the metrics job when the period
has ended) and compares it with the period before. Everything here is pure: the period's days,
its names in the lake (``dt=2026-11-30``, ``week=2026-W48``, ``month=2026-11``) and in prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from minidrama.config import REPORT_KINDS
from minidrama.lake import metrics_key, month_metrics_key, period_report_key, week_metrics_key
from minidrama.metrics.period import month_of, week_of

__all__ = ["ReportKind", "ReportPeriod", "as_period", "span_text"]

ReportKind = Literal["daily", "weekly", "monthly"]

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def span_text(first: date, last: date) -> str:
    """``Nov 30``, ``Nov 23–29``, ``Nov 30 – Dec 6``, ``Dec 29, 2025 – Jan 4, 2026``."""
    if first == last:
        return first.strftime("%b %-d")
    if first.year != last.year:
        return f"{first.strftime('%b %-d, %Y')} – {last.strftime('%b %-d, %Y')}"
    if first.month != last.month:
        return f"{first.strftime('%b %-d')} – {last.strftime('%b %-d')}"
    return f"{first.strftime('%b %-d')}–{last.day}"


@dataclass(frozen=True)
class ReportPeriod:
    """The days a report covers, ``first`` … ``last`` (calendar days in the app's time zone)."""

    kind: ReportKind
    first: date
    last: date

    @classmethod
    def day(cls, day: date) -> ReportPeriod:
        return cls("daily", day, day)

    @classmethod
    def week_of(cls, day: date) -> ReportPeriod:
        week = week_of(day)
        return cls("weekly", week.first, week.last)

    @classmethod
    def month_of(cls, day: date) -> ReportPeriod:
        month = month_of(day)
        return cls("monthly", month.first, month.last)

    @classmethod
    def of(cls, kind: str, day: date) -> ReportPeriod:
        """The ``kind`` period (daily, weekly, monthly) that contains ``day``."""
        if kind == "weekly":
            return cls.week_of(day)
        if kind == "monthly":
            return cls.month_of(day)
        if kind == "daily":
            return cls.day(day)
        raise ValueError(f"{kind!r} is not a report; choose from {', '.join(REPORT_KINDS)}")

    @classmethod
    def parse_week(cls, text: str) -> ReportPeriod:
        """``2026-W48`` → that ISO week; ValueError naming the text otherwise."""
        match = _WEEK.match(text.strip())
        try:
            if match is None:
                raise ValueError
            return cls.week_of(date.fromisocalendar(int(match[1]), int(match[2]), 1))
        except ValueError:
            raise ValueError(f"{text!r} is not an ISO week like 2026-W48") from None

    @classmethod
    def parse_month(cls, text: str) -> ReportPeriod:
        """``2026-11`` → that month; ValueError naming the text otherwise."""
        match = _MONTH.match(text.strip())
        try:
            if match is None:
                raise ValueError
            return cls.month_of(date(int(match[1]), int(match[2]), 1))
        except ValueError:
            raise ValueError(f"{text!r} is not a month like 2026-11") from None

    @property
    def label(self) -> str:
        """The period's name in the lake and in file names: ``2026-11-30``, ``2026-W48``, ``2026-11``."""
        if self.kind == "weekly":
            year, week, _ = self.first.isocalendar()
            return f"{year}-W{week:02d}"
        if self.kind == "monthly":
            return f"{self.first.year}-{self.first.month:02d}"
        return self.first.isoformat()

    @property
    def partition(self) -> str:
        """The period's partition under ``metrics/`` and ``reports/`` (SPEC section 3)."""
        name = {"daily": "dt", "weekly": "week", "monthly": "month"}[self.kind]
        return f"{name}={self.label}"

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=offset) for offset in range((self.last - self.first).days + 1)]

    @property
    def noun(self) -> str:
        return {"daily": "day", "weekly": "week", "monthly": "month"}[self.kind]

    @property
    def title(self) -> str:
        """``Daily report``, ``Weekly report``, ``Monthly report``."""
        return f"{self.kind.capitalize()} report"

    @property
    def short(self) -> str:
        """A column head or a chart's span: ``Nov 30``, ``Nov 23–29``, ``November``."""
        if self.kind == "monthly":
            return self.first.strftime("%B")
        return span_text(self.first, self.last)

    @property
    def heading(self) -> str:
        """The report's date line: ``Monday, November 30, 2026``, ``Week 48 of 2026: Monday,
        November 23 – Sunday, November 29``, ``November 2026``."""
        if self.kind == "weekly":
            year, week, _ = self.first.isocalendar()
            return (
                f"Week {week} of {year}: {self.first.strftime('%A, %B %-d')} – "
                f"{self.last.strftime('%A, %B %-d, %Y')}"
            )
        if self.kind == "monthly":
            return self.first.strftime("%B %Y")
        return self.first.strftime("%A, %B %-d, %Y")

    @property
    def on(self) -> str:
        """``on Nov 30``, ``in Nov 23–29``, ``in November``: where a sentence says when."""
        return f"on {self.short}" if self.kind == "daily" else f"in {self.short}"

    @property
    def this(self) -> str:
        """``on this day``, ``in this week``, ``in this month``."""
        return f"{'on' if self.kind == 'daily' else 'in'} this {self.noun}"

    def metrics_key(self, app_id: str) -> str:
        """The metrics document the report reads: the day's, or the week's / month's range document."""
        if self.kind == "weekly":
            return week_metrics_key(app_id, self.label)
        if self.kind == "monthly":
            return month_metrics_key(app_id, self.label)
        return metrics_key(app_id, self.first)

    def report_key(self, app_id: str, filename: str) -> str:
        """A file of the report under ``reports/app_id={app}/{partition}/``."""
        return period_report_key(app_id, self.partition, filename)

    def previous(self) -> ReportPeriod:
        """The period of the same kind just before this one."""
        return ReportPeriod.of(self.kind, self.first - timedelta(days=1))


def as_period(period: ReportPeriod | date) -> ReportPeriod:
    """``period`` itself, or the daily report's period of a day."""
    return period if isinstance(period, ReportPeriod) else ReportPeriod.day(period)
