"""Rendering: the view model to HTML (Jinja2), the HTML to PDF (WeasyPrint), plus the email's parts.

:func:`build_report` is the whole rendering step: documents in, every artefact of one report out
(page HTML with SVG charts, PDF, email HTML with PNG charts by Content-ID, plain text, subject).
It reads and writes nothing.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from typing import Any

import jinja2

from minidrama.dashboard import DashboardLink
from minidrama.report.charts import REDEEM_NOTE, Chart, chart_specs, render_png, render_svg, svg_data_uri
from minidrama.report.format import MISSING, format_count, format_rate, format_timestamp, format_value
from minidrama.report.health import DataHealth
from minidrama.report.model import (
    ACTIVE_USERS,
    DAY1_RETENTION_NEW,
    GMV,
    PAYING_USERS,
    TOP_VALUES,
    BySegmentTable,
    MetricRow,
    PeriodDocuments,
    ReportView,
    build_period_view,
    build_view,
)
from minidrama.report.period import ReportPeriod

__all__ = [
    "RenderedReport",
    "ChartImage",
    "build_report",
    "build_period_report",
    "render_report",
    "render_html",
    "render_pdf",
    "render_text",
    "subject_line",
    "preheader_text",
    "chart_content_id",
]

_ARROWS = {"good": "▲", "bad": "▼", "neutral": "•"}


@dataclass(frozen=True)
class ChartImage:
    """A chart for one medium: the ``src`` of its ``<img>``, display width in px, and alt text."""

    src: str
    width: int
    alt: str = ""


@dataclass(frozen=True)
class RenderedReport:
    """Everything one report consists of; ``email_images`` maps Content-ID → PNG bytes."""

    app_id: str
    period: ReportPeriod
    html: str
    pdf: bytes
    email_html: str
    text: str
    subject: str
    email_images: dict[str, bytes] = field(default_factory=dict)
    missing_days: list[date] = field(default_factory=list)
    view: ReportView | None = None

    @property
    def day(self) -> date:
        """The last day the report covers (its day, for a daily report)."""
        return self.period.last


def chart_content_id(chart_id: str) -> str:
    """The Content-ID (without angle brackets) of a chart's PNG in the email."""
    return f"{chart_id}@report.minidrama"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
    )


def _template_source(name: str) -> str:
    return (
        resources.files("minidrama.report").joinpath("templates").joinpath(name).read_text(encoding="utf-8")
    )


_ENV = _environment()
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)


def _compact_css(css: str) -> str:
    """The sheet without comments and indentation: the email carries it in every message."""
    lines = (line.strip() for line in _CSS_COMMENT.sub("", css).splitlines())
    return "\n".join(line for line in lines if line)


_PAGE_CSS = _template_source("report.css") + "\n" + _template_source("print.css")
_EMAIL_CSS = _compact_css(_template_source("report.css"))
# Keeps mail clients from filling the inbox preview with the text after the preheader.
_PREHEADER_PADDING = "&#847;&zwnj;&nbsp;" * 60


def _heat(rate: float | None) -> str:
    """The class of a retention cell: ``h0`` … ``h9``, deeper blue for a higher rate (54% and up is h9)."""
    if rate is None:
        return ""
    return f"h{max(0, min(int(rate / 0.06), 9))}"


def _value_size(text: str) -> str:
    """A KPI card's number a size down when it is long, so it stays inside the card at 700 px."""
    if len(text) > 11:
        return " longer"
    if len(text) > 8:
        return " long"
    return ""


def render_html(
    view: ReportView,
    charts: Mapping[str, ChartImage],
    *,
    email: bool = False,
    dashboard_link: DashboardLink | None = None,
) -> str:
    """The report page (``email=False``) or the email's HTML part.

    ``charts`` maps chart ids to their image (SVG data URI or ``cid:``). The email leaves out the
    page's data attributes and print styles and shows fewer retention cohorts, and starts with a
    hidden preheader; ``dashboard_link`` (the email's only: it carries a read token) opens the day
    on the dashboard.
    """
    return _ENV.get_template("report.html.j2").render(
        view=view,
        charts=charts,
        email=email,
        dashboard_link=dashboard_link,
        css=_EMAIL_CSS if email else _PAGE_CSS,
        preheader=preheader_text(view),
        preheader_padding=_PREHEADER_PADDING,
        fmt=lambda value, kind: format_value(value, kind, view.currency),
        heat=_heat,
        value_size=_value_size,
        timestamp=format_timestamp,
        arrows=_ARROWS,
        one_day=timedelta(days=1),
        top_values=TOP_VALUES,
        redeem_note=REDEEM_NOTE,
    )


def render_pdf(html: str) -> bytes:
    """A4 PDF of the report page (print CSS); the page must carry its images as data URIs."""
    import weasyprint  # heavy import, only where a PDF is made

    return bytes(weasyprint.HTML(string=html, base_url=None).write_pdf())


def subject_line(view: ReportView) -> str:
    """``demo-drama daily report 2026-11-30: …``, ``… weekly report 2026-W48 (Nov 23–29): …``."""
    active, gmv = view.row(ACTIVE_USERS), view.row(GMV)
    period = view.period
    name = {
        "daily": period.label,
        "weekly": f"{period.label} ({period.short})",
        "monthly": period.heading,
    }[period.kind]
    return f"{view.app_id} {period.kind} report {name}: {active.text} active users, {gmv.text} GMV"


def preheader_text(view: ReportView) -> str:
    """The inbox preview line: the headline numbers and their change vs the first baseline
    (the day before; the week or month before)."""

    def part(row: MetricRow, noun: str) -> str:
        change = row.comparisons[0].change
        return f"{row.text} {noun}" + (f" ({change})" if change != MISSING else "")

    retention = view.row(DAY1_RETENTION_NEW)
    return (
        f"{view.period.short}: "
        f"{part(view.row(ACTIVE_USERS), 'active users')} · {part(view.row(GMV), 'GMV')} · "
        f"{part(view.row(PAYING_USERS), 'paying users')} · day-1 retention {retention.text}"
    )


def render_text(view: ReportView, dashboard_link: DashboardLink | None = None) -> str:
    """The plain-text part of the email: the headline numbers with their changes, what each rate is
    of, the per-OS figures and the data health."""
    lines = [f"{view.app_id} · {view.period.title} · {view.period.heading} ({view.timezone})", ""]
    if dashboard_link is not None:
        lines += [
            f"Dashboard (any date range, every module; link valid until {_link_expiry(dashboard_link)}):",
            dashboard_link.url,
            "",
        ]
    if view.missing_days:
        lines += [
            f"Note: metrics are missing for {len(view.missing_days)} of the {len(view.days)} days covered: "
            + ", ".join(day.isoformat() for day in view.missing_days),
            "",
        ]
    headline = {row.metric for row in view.dashboard}
    sections = (
        ("Headline", view.dashboard),
        ("Monetization", [row for row in view.monetization if row.metric not in headline]),
        ("Performance", view.performance),
    )
    widths = [max(len(baseline.vs), 13) for baseline in view.baselines]
    for title, rows in sections:
        heads = "".join(
            f"  {baseline.vs:>{width}}" for baseline, width in zip(view.baselines, widths, strict=True)
        )
        lines.append(f"{title.upper():<{_TEXT_LABEL + 2}} {view.period.short:>10}{heads}")
        for row in rows:
            # a headline rate says what it is of with its counts ("169 of 400 new users of ...")
            lines += _text_row(row, widths, row.context if title == "Headline" and row.kind == "rate" else "")
        if title == "Performance":
            lines += _by_os_lines(view.performance_by_os, view.currency)
        lines.append("")
    lines += _by_os_lines(view.retention_by_os, view.currency, "DAY-1 RETENTION BY OS")
    if view.health is not None:
        lines += _health_lines(view.health)
    lines += [
        f"Money in {view.currency}. {MISSING} means not known "
        "(no metrics for that day, or nothing to divide by).",
        "The full report with charts, retention, funnels and breakdowns "
        "is in the HTML part and the attached PDF.",
    ]
    return "\n".join(wrapped for line in lines for wrapped in _wrap(line)) + "\n"


def _wrap(line: str, width: int = 78) -> list[str]:
    """A prose line wrapped for plain-text readers; table rows fit already and links stay whole."""
    if len(line) <= width or "://" in line:
        return [line]
    indent = line[: len(line) - len(line.lstrip())]
    return textwrap.wrap(
        line, width, initial_indent="", subsequent_indent=indent + "  ", break_on_hyphens=False
    )


_TEXT_LABEL = 34  # a row is 80 characters wide


def _text_row(row: MetricRow, widths: list[int], note: str = "") -> list[str]:
    """A metric's line of the plain-text part; what it is of (or ``note``) follows its label, or the line."""
    note = note or row.of
    joined = f"{row.label}, {note}"
    name = joined if note and len(joined) <= _TEXT_LABEL else row.label
    changes = "".join(
        f"  {comparison.change:>{width}}" for comparison, width in zip(row.comparisons, widths, strict=True)
    )
    line = f"  {name:<{_TEXT_LABEL}} {row.text:>10}{changes}"
    return [line, f"    {note}"] if note and name == row.label else [line]


def _by_os_lines(table: BySegmentTable, currency: str, title: str | None = None) -> list[str]:
    """``Loading success rate by OS: All 96.7% · Android 96.9% · iOS 96.5%`` per row of the table."""
    if len(table.columns) < 2:
        return []
    lines = [title] if title else []
    for row in table.rows:
        values = " · ".join(
            f"{column.label} {format_value(value, row.metric.kind, currency)}"
            for column, value in zip(table.columns, row.values, strict=True)
        )
        lines.append(f"  {row.metric.label}: {values}")
    return [*lines, ""] if title else lines


def _health_lines(health: DataHealth) -> list[str]:
    lines = [
        "DATA HEALTH",
        f"  Events accepted (stored, by event time):     {format_count(health.accepted):>10}",
        f"  Events rejected (received, in quarantine):   {format_count(health.rejected):>10}"
        f"   ({format_rate(health.rejected_share)} of all)",
    ]
    lines += [f"    {format_count(reason.events):>7}  {reason.reason}" for reason in health.reasons]
    provisional = health.provisional_days
    if provisional:
        lines.append(
            f"  Figures of {', '.join(day.isoformat() for day in provisional)} may still change "
            "(late events are counted until the metrics job's last recompute)."
        )
    if health.problems:
        lines.append(f"  {len(health.problems)} file(s) or line(s) could not be read.")
    return [*lines, ""]


def _link_expiry(link: DashboardLink) -> str:
    return link.expires_at.strftime("%Y-%m-%d %H:%M UTC")


def _svg_width(svg: str) -> int:
    match = re.search(r'<svg[^>]*\swidth="([\d.]+)"', svg)
    return round(float(match.group(1))) if match else 640


def _render_chart(chart: Chart) -> tuple[Chart, ChartImage, bytes]:
    svg = render_svg(chart.spec)
    return chart, ChartImage(svg_data_uri(svg), _svg_width(svg), chart.alt), render_png(chart.spec)


def build_report(
    app_id: str,
    day: date,
    documents: Mapping[date, Mapping[str, Any] | None],
    dashboard_link: DashboardLink | None = None,
    *,
    health: DataHealth | None = None,
) -> RenderedReport:
    """Render the daily report of ``app_id`` for ``day`` from the metrics documents of its window.

    ``dashboard_link`` goes into the email's parts only: the stored page and PDF carry no token.
    ``health`` (:func:`minidrama.report.health.read_data_health`) adds the data health section.

    ``documents`` maps the days of :func:`minidrama.report.model.window_days` to their document
    (None where missing). Raises :class:`~minidrama.report.model.MissingMetricsError` when the
    day's own document is missing: a report is never rendered blank.
    """
    return render_report(build_view(app_id, day, documents, health), dashboard_link)


def build_period_report(
    app_id: str,
    period: ReportPeriod,
    documents: PeriodDocuments,
    dashboard_link: DashboardLink | None = None,
    *,
    health: DataHealth | None = None,
) -> RenderedReport:
    """Render the weekly or monthly report of ``app_id`` for ``period`` (see
    :func:`~minidrama.report.model.build_period_view`); raises
    :class:`~minidrama.report.model.MissingMetricsError` when the period's document is missing."""
    view = build_period_view(app_id, period, documents.document, documents.previous, documents.daily, health)
    return render_report(view, dashboard_link)


def render_report(view: ReportView, dashboard_link: DashboardLink | None = None) -> RenderedReport:
    """Every artefact of the report of ``view``: the page, the PDF and the email's parts."""
    charts = chart_specs(view)
    # vl-convert runs in native code; two workers overlap SVG/PNG conversion of different charts.
    with ThreadPoolExecutor(max_workers=2) as pool:
        rendered = list(pool.map(_render_chart, charts))
    page_images = {chart.chart_id: image for chart, image, _png in rendered}
    email_images = {
        chart.chart_id: ChartImage(f"cid:{chart_content_id(chart.chart_id)}", image.width, chart.alt)
        for chart, image, _png in rendered
    }
    html = render_html(view, page_images)
    return RenderedReport(
        app_id=view.app_id,
        period=view.period,
        html=html,
        pdf=render_pdf(html),
        email_html=render_html(view, email_images, email=True, dashboard_link=dashboard_link),
        text=render_text(view, dashboard_link),
        subject=subject_line(view),
        email_images={chart_content_id(chart.chart_id): png for chart, _image, png in rendered},
        missing_days=view.missing_days,
        view=view,
    )
