"""The daily report's content: formatting, the view model, the HTML against the JSON, the PDF."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from typing import Any

import pytest
from pypdf import PdfReader

from minidrama.report import MissingMetricsError, ReportInputError, build_report, build_view, window_days
from minidrama.report.charts import chart_specs
from minidrama.report.format import (
    format_change,
    format_count,
    format_duration,
    format_launch_speed,
    format_money,
    format_rate,
    format_timestamp,
)
from minidrama.report.model import ACTIVE_USERS, DAY1_RETENTION_NEW, PeriodDocuments, build_period_view
from minidrama.report.period import ReportPeriod
from minidrama.report.render import render_html
from tests.report_fixtures import checked_cells, lookup, metrics_document, parse, range_document

APP = "dramaapp"
DAY = date(2026, 11, 28)


def documents(missing: set[date] | frozenset[date] = frozenset(), **options: Any) -> dict[date, Any]:
    return {
        day: None if day in missing else metrics_document(APP, day, **options) for day in window_days(DAY)
    }


@pytest.fixture(scope="module")
def report_with_gaps():
    """GIVEN 31 days of documents of which two (Nov 20 and the day 7 days before) are missing."""
    docs = documents(missing={date(2026, 11, 20), DAY - timedelta(days=7)})
    return docs, build_report(APP, DAY, docs)


# --- formatting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("milliseconds", "expected"),
    [
        (None, "—"),
        (0, "0s"),
        (40, "0s"),
        (4200, "4.2s"),
        (42_000, "42s"),
        (59_600, "1m 00s"),
        (252_000, "4m 12s"),
        (3_900_000, "1h 05m"),
        (float("nan"), "—"),
    ],
)
def test_durations_read_in_human_form(milliseconds, expected):
    assert format_duration(milliseconds) == expected


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        (1234.5, "USD", "$1,234.50"),
        (0.0, "USD", "$0.00"),
        (1234.5, "EUR", "€1,234.50"),
        (1234.5, "CHF", "1,234.50 CHF"),
        (1234.0, "JPY", "¥1,234"),
        (-3.0, "USD", "-$3.00"),
        (None, "USD", "—"),
    ],
)
def test_money_carries_the_apps_currency(value, currency, expected):
    assert format_money(value, currency) == expected


@pytest.mark.parametrize(
    ("function", "value", "expected"),
    [
        (format_rate, 0.1234, "12.3%"),
        (format_rate, 1.016, "101.6%"),  # funnel rates may exceed 1: not clamped
        (format_rate, 0.0, "0.0%"),
        (format_rate, None, "—"),
        (format_count, 12345, "12,345"),
        (format_count, 0, "0"),
        (format_count, None, "—"),
        (format_launch_speed, 850, "850 ms"),
        (format_launch_speed, 1234.5, "1.23 s"),
        (format_launch_speed, None, "—"),
    ],
)
def test_rates_counts_and_launch_speed(function, value, expected):
    assert function(value) == expected


@pytest.mark.parametrize(
    ("current", "previous", "kind", "expected"),
    [
        (110, 100, "count", "+10.0%"),
        (90, 100, "money", "−10.0%"),
        (5, 0, "count", "—"),  # nothing to compare against: unknown, not infinite
        (5, None, "count", "—"),
        (None, 5, "count", "—"),
        (0.13, 0.12, "rate", "+1.0 pp"),  # rates change in percentage points
        (0.10, None, "rate", "—"),
        (1.5201, 1.5203, "decimal", "0.0%"),  # rounds to no change: no sign, no colour
        (0.1200001, 0.12, "rate", "0.0 pp"),
    ],
)
def test_changes(current, previous, kind, expected):
    assert format_change(current, previous, kind) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-29T04:26:09.196638Z", "2026-11-29 04:26 UTC"),
        ("2026-11-29T06:26:09+02:00", "2026-11-29 04:26 UTC"),
        (None, "—"),
    ],
)
def test_timestamps_read_to_the_minute(value, expected):
    assert format_timestamp(value) == expected


def test_a_change_that_rounds_to_zero_is_neutral():
    docs = documents()
    docs[DAY - timedelta(days=1)]["segments"]["all"]["behavior"]["average_visit_count"] = (
        docs[DAY]["segments"]["all"]["behavior"]["average_visit_count"] + 1e-6
    )
    rows = {row.path: row for row in build_view(APP, DAY, docs).behavior}
    day_before = rows["behavior.average_visit_count"].comparisons[0]
    assert day_before.change == "0.0%"
    assert day_before.tone == "neutral"


# --- the view model ------------------------------------------------------------------------------


def test_retention_cells_come_from_the_document_of_cohort_day_plus_n():
    # GIVEN the documents of the window, the one of Nov 25 missing
    docs = documents(missing={date(2026, 11, 25)})
    # WHEN the view is built
    view = build_view(APP, DAY, docs)
    rows = {row.cohort_date: row for row in view.retention}
    # THEN there are the last 30 cohorts, newest first
    assert [row.cohort_date for row in view.retention] == [DAY - timedelta(days=n) for n in range(1, 31)]
    # AND d7 of the cohort of Nov 14 is what the document of Nov 21 published
    published = docs[date(2026, 11, 21)]["segments"]["all"]["retention"]["new"]["d7"]
    assert rows[date(2026, 11, 14)].new.cells[7].rate == published["rate"]
    assert rows[date(2026, 11, 14)].new.cohort_size == published["cohort_size"]
    # AND cells not known yet are pending, cells whose document is missing are missing
    assert rows[date(2026, 11, 27)].new.cells[7].state == "pending"
    assert rows[date(2026, 11, 24)].active.cells[1].state == "missing"
    assert rows[date(2026, 11, 24)].active.cells[1].rate is None


def test_the_days_own_document_is_required():
    with pytest.raises(MissingMetricsError, match="2026-11-28"):
        build_view(APP, DAY, documents(missing={DAY}))


def test_a_document_of_another_schema_version_is_refused_by_name():
    docs = documents()
    docs[DAY]["schema_version"] = 2
    with pytest.raises(ReportInputError, match="schema_version 2"):
        build_view(APP, DAY, docs)


# --- the HTML holds the numbers of the JSON ------------------------------------------------------


def test_every_number_cell_shows_the_value_of_its_document(report_with_gaps):
    # GIVEN a rendered report and the documents it was made from
    docs, report = report_with_gaps
    assert len(parse(report.html).cells) > 250
    # THEN each cell's raw value is the document's of its day, and its text is that value
    # formatted; a day without a document reads as missing, never as a number
    assert checked_cells(report.html, lambda day: docs[date.fromisoformat(day)]) > 250


def test_the_report_covers_every_metric_of_the_day(report_with_gaps):
    docs, report = report_with_gaps
    shown = {
        (cell["data-metric"], cell["data-segment"])
        for cell in parse(report.html).cells
        if cell["data-date"] == "2026-11-28"
    }
    segment = docs[DAY]["segments"]["all"]
    expected = [f"dashboard.{key}" for key in segment["dashboard"]]
    expected += [f"behavior.{key}" for key in segment["behavior"]]
    expected += [f"performance.{key}" for key in segment["performance"]]
    expected += [f"iap_users.{key}" for key in segment["iap_users"] if key != "ltv"]
    expected += [
        f"iap_users.ltv.{n}.{key}" for n in ("d0", "d7", "d30") for key in ("cohort_size", "revenue", "value")
    ]
    expected += [
        f"iap_orders.{payers}.{key}"
        for payers in ("all", "new_payers", "returning_payers")
        for key in ("gmv", "average_gmv", "recharge_orders", "redeem_orders")
    ]
    expected += [f"iap_orders.all.top_redeemed_products.{i}.orders" for i in range(10)]
    # the eight page-view stages are the same events in both funnels: shown once, as the recharge's
    expected += [
        f"funnel.recharge.{i}.{key}"
        for i in range(9)
        for key in ("pv", "rate_from_previous", "rate_from_first")
    ]
    expected += [f"funnel.redeem.8.{key}" for key in ("pv", "rate_from_previous", "rate_from_first")]
    expected += [f"entry_points.{name}.launch_sessions" for name in segment["entry_points"]]
    expected += ["retention.new.d1.rate", "retention.active.d30.rate"]
    assert not [metric for metric in expected if (metric, "all") not in shown]
    # AND each OS and region segment shows its GMV
    for name in docs[DAY]["segments"]:
        if name != "all":
            assert ("iap_orders.all.gmv", name) in shown


def test_sections_come_in_the_order_of_the_spec(report_with_gaps):
    _docs, report = report_with_gaps
    assert parse(report.html).sections == ["dashboard", "monetization", "operations", "performance"]


def test_kpis_compare_with_the_day_before_and_seven_days_before(report_with_gaps):
    docs, report = report_with_gaps
    active = {row.path: row for row in report.view.dashboard}["dashboard.active_users"]
    yesterday = docs[DAY - timedelta(days=1)]["segments"]["all"]["dashboard"]["active_users"]
    day_before, week_before = active.comparisons
    assert (day_before.baseline.vs, week_before.baseline.vs) == ("vs day before", "vs 7 days before")
    assert day_before.value == yesterday
    assert day_before.change == format_change(active.value, yesterday, "count")
    # THEN the comparison with a missing day is unknown, not a 100% jump
    assert week_before.value is None and week_before.change == "—"


def test_a_day_without_payers_shows_dashes_not_zeros():
    # GIVEN a day without any paying user: ARPPU and average GMV have no denominator
    report = build_report(APP, DAY, documents(quiet=True))
    cells = {
        cell["data-metric"]: cell
        for cell in parse(report.html).cells
        if cell["data-date"] == "2026-11-28" and cell["data-segment"] == "all"
    }
    # THEN they read "—" and carry null
    for metric in ("iap_users.arppu", "iap_orders.all.average_gmv"):
        assert cells[metric]["text"] == "—" and cells[metric]["data-value"] == "null"
    # AND GMV is a real zero
    assert cells["iap_orders.all.gmv"]["text"] == "$0.00"
    # AND the GMV pies are left out with a sentence instead of an empty chart
    assert "No GMV on this day" in report.html
    assert "gmv-by-os" not in {image.get("data-chart") for image in parse(report.html).images}


def test_a_segment_without_active_users_reads_as_unknown_not_zero(report_with_gaps):
    _docs, report = report_with_gaps
    france = [row for row in report.view.segments["region"] if row.segment == "region:FR"][0]
    assert france.paying_user_rate is None


def test_missing_days_are_announced_and_left_out_of_the_trend_lines(report_with_gaps):
    _docs, report = report_with_gaps
    assert "2026-11-20" in report.html and "Metrics are missing for 2 of the 31 days" in report.html
    missing = [point for point in report.view.trends if point.missing]
    assert {point.day for point in missing} == {date(2026, 11, 20), date(2026, 11, 21)}
    assert all(point.active_users is None and point.gmv is None for point in missing)


def test_every_chart_is_an_svg_image_in_the_page(report_with_gaps):
    _docs, report = report_with_gaps
    charts = {
        image["data-chart"]: image["src"] for image in parse(report.html).images if "data-chart" in image
    }
    assert set(charts) == {
        "users-trend",
        "duration-trend",
        "gmv-trend",
        "payers-trend",
        "gmv-by-os",
        "gmv-by-region",
        "funnel",
    }
    assert all(src.startswith("data:image/svg+xml;base64,") for src in charts.values())


# --- the PDF -------------------------------------------------------------------------------------


def test_the_pdf_has_a_page_per_part_and_holds_the_kpis(report_with_gaps):
    docs, report = report_with_gaps
    pdf = PdfReader(io.BytesIO(report.pdf))
    texts = [page.extract_text() for page in pdf.pages]
    # THEN it has the report's pages: dashboard, monetization (2), operations (3 with the funnel)
    assert 5 <= len(texts) <= 8
    assert all(f"Page {number} of {len(texts)}" in text for number, text in enumerate(texts, start=1))
    # AND each part starts a page, in order
    starts = [
        next(index for index, text in enumerate(texts) if heading in text)
        for heading in ("Dashboard", "Monetization", "Operations")
    ]
    assert starts[0] == 0 and starts[1] == 1 and starts[2] > 1
    # AND the first page holds the dashboard KPIs as the document has them
    dashboard = docs[DAY]["segments"]["all"]["dashboard"]
    for key in ("total_users", "active_users", "new_users"):
        assert format_count(dashboard[key]) in texts[0]
    assert format_duration(dashboard["median_duration_per_user_ms"]) in texts[0]
    gmv = docs[DAY]["segments"]["all"]["iap_orders"]["all"]["gmv"]
    assert format_money(gmv, "USD") in "".join(texts[1:])
    assert "Performance" in texts[-1] or "Performance" in texts[-2]


# --- headline, labels, funnel, per OS ------------------------------------------------------------


def test_the_kpi_cards_put_money_and_retention_beside_the_user_counts(report_with_gaps):
    docs, report = report_with_gaps
    cards = re.findall(r'<td class="kpi" data-kpi="([\w.]+)">', report.html)
    assert cards == [
        "dashboard.active_users",
        "dashboard.new_users",
        "iap_users.paying_users",
        "iap_orders.all.gmv",
        "retention.new.d1.rate",
        "iap_users.arppu",
        "dashboard.median_duration_per_user_ms",
        "dashboard.total_users",
    ]
    # AND day-1 retention says whose it is, with its counts
    d1 = docs[DAY]["segments"]["all"]["retention"]["new"]["d1"]
    card = {row.path: row for row in report.view.dashboard}["retention.new.d1.rate"]
    assert card.context == f"{d1['retained']:,} of {d1['cohort_size']:,} new users of Nov 27"
    assert card.comparisons[0].change.endswith(" pp")


def test_every_rate_the_report_shows_says_what_it_is_a_share_of(report_with_gaps):
    _docs, report = report_with_gaps
    view = report.view
    rows = [*view.dashboard, *view.monetization, *view.behavior, *view.performance]
    rows_of_rates = [row for row in rows if row.kind == "rate"]
    assert rows_of_rates and all(row.of.startswith("of ") for row in rows_of_rates), [
        row.label for row in rows_of_rates if not row.of
    ]
    assert {row.path: row.of for row in rows}["iap_users.paying_user_rate"] == "of active users"
    assert 'Paying user rate<span class="of">of active users</span>' in report.html


def test_the_redeem_stage_is_explained_where_it_exceeds_the_stage_before():
    # GIVEN a day whose redeem orders outnumber the TikTok payment panel clicks
    docs = documents()
    funnel = docs[DAY]["segments"]["all"]["funnel"]
    clicks = funnel["redeem"][7]["pv"]
    funnel["redeem"][8].update(pv=clicks * 3, rate_from_previous=3.0)
    report = build_report(APP, DAY, docs)
    # THEN the table marks the step and explains it, and so does the chart
    row = report.html[report.html.index("9b</span>") :].split("</tr>")[0]
    assert 'class="num over"' in row and "300.0%" in row and '<span class="footnote"> *</span>' in row
    assert "one recharge buys Beans for several episodes" in report.html
    funnel_chart = next(chart for chart in chart_specs(report.view) if chart.chart_id == "funnel")
    assert any("one recharge buys" in line for line in funnel_chart.spec["title"]["subtitle"])
    assert "Beans" in funnel_chart.alt


def test_funnel_stages_that_differ_between_the_two_funnels_are_refused():
    docs = documents()
    docs[DAY]["segments"]["all"]["funnel"]["redeem"][2]["pv"] += 1
    with pytest.raises(ReportInputError, match="funnel stage 3 .* differs"):
        build_view(APP, DAY, docs)


def test_performance_and_day1_retention_have_a_column_per_os(report_with_gaps):
    docs, report = report_with_gaps
    cells = [cell for cell in parse(report.html).cells if cell["data-date"] == DAY.isoformat()]
    for metric in (
        "performance.loading_success_rate",
        "performance.average_launch_ms",
        "retention.new.d1.rate",
    ):
        segments = {cell["data-segment"] for cell in cells if cell["data-metric"] == metric}
        assert {"all", "os:android", "os:ios"} <= segments, metric
    assert [column.label for column in report.view.performance_by_os.columns] == ["All", "Android", "iOS"]


def test_without_os_segments_there_are_no_per_os_tables():
    report = build_report(APP, DAY, documents(segments=["all", "region:US"]))
    assert 'id="performance-by-os"' not in report.html and 'id="retention-by-os"' not in report.html
    assert "DAY-1 RETENTION BY OS" not in report.text and "Loading success rate: All" not in report.text


def test_the_view_reads_the_document_through_typed_metrics(report_with_gaps):
    # Every Metric reads the value its key names: the key is what the page's data-metric says.
    docs, report = report_with_gaps
    segment = docs[DAY]["segments"]["all"]
    view = report.view
    metrics = [row.metric for row in [*view.dashboard, *view.monetization, *view.behavior, *view.performance]]
    for metric in metrics:
        assert metric.read(segment) == lookup(segment, metric.key), metric.key


# --- weekly and monthly reports ------------------------------------------------------------------

WEEK = ReportPeriod.parse_week("2026-W48")  # Mon Nov 23 - Sun Nov 29


def period_documents(period: ReportPeriod, *, previous: bool = True) -> PeriodDocuments:
    before = period.previous()
    return PeriodDocuments(
        document=range_document(APP, period.first, period.last),
        previous=range_document(APP, before.first, before.last) if previous else None,
        daily={day: metrics_document(APP, day) for day in period.days},
    )


def test_a_weekly_report_compares_each_number_with_the_week_before():
    documents = period_documents(WEEK)
    view = build_period_view(APP, WEEK, documents.document, documents.previous, documents.daily)
    assert [baseline.vs for baseline in view.baselines] == ["vs week before"]
    active = view.row(ACTIVE_USERS)
    this, before = (
        doc["segments"]["all"]["dashboard"]["active_users"]
        for doc in (documents.document, documents.previous)
    )
    assert (active.value, active.comparisons[0].value) == (this, before)
    assert active.comparisons[0].change == format_change(this, before, "count")
    # AND the trend charts have a point per day of the week, from the daily documents
    assert [point.day for point in view.trends] == WEEK.days
    assert (
        view.trends[0].active_users
        == documents.daily[WEEK.first]["segments"]["all"]["dashboard"]["active_users"]
    )


def test_a_weekly_report_shows_its_cohorts_and_only_the_retention_days_it_knows():
    documents = period_documents(WEEK)
    view = build_period_view(APP, WEEK, documents.document, documents.previous, documents.daily)
    html = render_html(view, {})
    # THEN the week's 7 cohorts, newest first, and their totals; D7 and later can't be known in a
    # week, so their columns are left out and the note says so
    assert [row.cohort_date for row in view.retention] == list(reversed(WEEK.days))
    assert view.retention_days == (1,) and view.retention_total is not None
    assert view.retention[0].new.cells[1].state == "pending"  # Sun Nov 29's D1 is Nov 30
    assert "D7, D14, D30 of this week's cohorts are not known yet" in html
    assert '<th class="num">D7</th>' not in html
    # AND LTV over the week, and day 0; day 7 and 30 have no cohort in a week
    assert [row.key for row in view.ltv] == ["range", "d0"]
    # AND rates say what they are of over a range
    assert view.row(DAY1_RETENTION_NEW).of == "of each day's new users, summed over the days but the last"


@pytest.mark.parametrize(
    ("month", "windows"), [("2026-11", ["range", "d0", "d7"]), ("2026-12", ["range", "d0", "d7", "d30"])]
)
def test_a_monthly_report_shows_the_ltv_windows_its_days_allow(month, windows):
    period = ReportPeriod.parse_month(month)
    documents = period_documents(period)
    view = build_period_view(APP, period, documents.document, documents.previous, documents.daily)
    assert [row.key for row in view.ltv] == windows


def test_a_period_without_the_previous_document_says_there_is_nothing_to_compare_with():
    documents = period_documents(WEEK, previous=False)
    view = build_period_view(APP, WEEK, documents.document, None, documents.daily)
    html = render_html(view, {})
    assert "The week before (2026-W47) has no metrics document" in html
    assert all(row.comparisons[0].change == "—" for row in view.dashboard)


def test_a_period_report_refuses_the_document_of_another_period():
    documents = period_documents(WEEK)
    with pytest.raises(ReportInputError, match="is not the range document of 2026-11-23 … 2026-11-29"):
        build_period_view(APP, WEEK, documents.previous, None, documents.daily)
    with pytest.raises(MissingMetricsError, match="week=2026-W48"):
        build_period_view(APP, WEEK, None, None, documents.daily)
