"""What a report covers: a day, an ISO week, a month; their names in the lake and in prose."""

from __future__ import annotations

from datetime import date

import pytest

from minidrama.report.period import ReportPeriod, span_text


@pytest.mark.parametrize(
    ("period", "label", "partition", "first", "last", "previous"),
    [
        (
            ReportPeriod.day(date(2026, 11, 30)),
            "2026-11-30",
            "dt=2026-11-30",
            "2026-11-30",
            "2026-11-30",
            "2026-11-29",
        ),
        (
            ReportPeriod.week_of(date(2026, 11, 26)),
            "2026-W48",
            "week=2026-W48",
            "2026-11-23",
            "2026-11-29",
            "2026-W47",
        ),
        # ISO weeks belong to the year of their Thursday: Dec 29, 2025 is in 2026's week 1
        (
            ReportPeriod.week_of(date(2026, 1, 1)),
            "2026-W01",
            "week=2026-W01",
            "2025-12-29",
            "2026-01-04",
            "2025-W52",
        ),
        (
            ReportPeriod.week_of(date(2026, 12, 31)),
            "2026-W53",
            "week=2026-W53",
            "2026-12-28",
            "2027-01-03",
            "2026-W52",
        ),
        (
            ReportPeriod.month_of(date(2026, 2, 14)),
            "2026-02",
            "month=2026-02",
            "2026-02-01",
            "2026-02-28",
            "2026-01",
        ),
        (
            ReportPeriod.month_of(date(2026, 1, 31)),
            "2026-01",
            "month=2026-01",
            "2026-01-01",
            "2026-01-31",
            "2025-12",
        ),
    ],
)
def test_periods_and_their_names(period, label, partition, first, last, previous):
    assert period.label == label and period.partition == partition
    assert (period.first.isoformat(), period.last.isoformat()) == (first, last)
    assert period.previous().label == previous
    assert len(period.days) == (period.last - period.first).days + 1


def test_parsing_weeks_and_months_round_trips_and_names_bad_text():
    assert ReportPeriod.parse_week("2026-W48") == ReportPeriod.week_of(date(2026, 11, 23))
    assert ReportPeriod.parse_month("2026-11") == ReportPeriod.month_of(date(2026, 11, 30))
    for text in ("2026-W54", "2026W48", "2026-w48", "48"):
        with pytest.raises(ValueError, match=f"'{text}' is not an ISO week like 2026-W48"):
            ReportPeriod.parse_week(text)
    for text in ("2026-13", "2026-1", "Nov 2026"):
        with pytest.raises(ValueError, match=f"'{text}' is not a month like 2026-11"):
            ReportPeriod.parse_month(text)


@pytest.mark.parametrize(
    ("first", "last", "text"),
    [
        (date(2026, 11, 30), date(2026, 11, 30), "Nov 30"),
        (date(2026, 11, 23), date(2026, 11, 29), "Nov 23–29"),
        (date(2026, 11, 30), date(2026, 12, 6), "Nov 30 – Dec 6"),
        (date(2025, 12, 29), date(2026, 1, 4), "Dec 29, 2025 – Jan 4, 2026"),
    ],
)
def test_spans_read_short(first, last, text):
    assert span_text(first, last) == text


def test_prose_of_each_kind():
    day, week, month = (
        ReportPeriod.day(date(2026, 11, 30)),
        ReportPeriod.parse_week("2026-W48"),
        ReportPeriod.parse_month("2026-11"),
    )
    assert [p.title for p in (day, week, month)] == ["Daily report", "Weekly report", "Monthly report"]
    assert [p.on for p in (day, week, month)] == ["on Nov 30", "in Nov 23–29", "in November"]
    assert week.heading == "Week 48 of 2026: Monday, November 23 – Sunday, November 29, 2026"
    assert month.heading == "November 2026"
    assert week.metrics_key("a") == "metrics/app_id=a/week=2026-W48/metrics.json"
    assert month.report_key("a", "report.pdf") == "reports/app_id=a/month=2026-11/report.pdf"
