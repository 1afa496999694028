"""Rendering: the view model to HTML (Jinja2), the HTML to PDF (WeasyPrint), plus the email's parts.

:func:`build_report` is the whole rendering step: documents in, every artefact of one report out
(page HTML with SVG charts, PDF, email HTML with PNG charts by Content-ID, plain text, subject).
It reads and writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from typing import Any

import jinja2

from minidrama.dashboard import DashboardLink
from minidrama.report.charts import Chart, chart_specs, render_png, render_svg, svg_data_uri
from minidrama.report.format import MISSING, format_timestamp, format_value
from minidrama.report.model import TOP_VALUES, ReportView, build_view

__all__ = [
    "RenderedReport",
    "ChartImage",
    "build_report",
    "render_html",
    "render_pdf",
    "render_text",
    "subject_line",
    "chart_content_id",
]

_ARROWS = {"good": "▲", "bad": "▼", "neutral": "•"}


@dataclass(frozen=True)
class ChartImage:
    """A chart's source for one medium: an ``src`` for the ``<img>`` and its display width in px."""

    src: str
    width: int


@dataclass(frozen=True)
class RenderedReport:
    """Everything one report consists of; ``email_images`` maps Content-ID → PNG bytes."""

    app_id: str
    day: date
    html: str
    pdf: bytes
    email_html: str
    text: str
    subject: str
    email_images: dict[str, bytes] = field(default_factory=dict)
    missing_days: list[date] = field(default_factory=list)
    view: ReportView | None = None


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


def _heat(rate: float | None) -> str:
    """Background of a retention cell: deeper blue for a higher rate (60% and above is the deepest)."""
    if rate is None:
        return "transparent"
    alpha = max(0.04, min(rate / 0.6, 1.0) * 0.55)
    return f"rgba(47, 95, 208, {alpha:.2f})"


def render_html(
    view: ReportView,
    charts: Mapping[str, ChartImage],
    *,
    email: bool = False,
    dashboard_link: DashboardLink | None = None,
) -> str:
    """The report page. ``charts`` maps chart ids to their image source (SVG data URI or ``cid:``);
    ``dashboard_link`` (the email's only: it carries a read token) opens the day on the dashboard."""
    return _ENV.get_template("report.html.j2").render(
        view=view,
        charts=charts,
        email=email,
        dashboard_link=dashboard_link,
        css=_template_source("report.css"),
        fmt=lambda value, kind: format_value(value, kind, view.currency),
        heat=_heat,
        timestamp=format_timestamp,
        arrows=_ARROWS,
        days=lambda n: timedelta(days=n),
        one_day=timedelta(days=1),
        one_week=timedelta(days=7),
        top_values=TOP_VALUES,
    )


def render_pdf(html: str) -> bytes:
    """A4 PDF of the report page (print CSS); the page must carry its images as data URIs."""
    import weasyprint  # heavy import, only where a PDF is made

    return bytes(weasyprint.HTML(string=html, base_url=None).write_pdf())


def subject_line(view: ReportView) -> str:
    summary = view.summary
    active = summary["dashboard.active_users"]
    gmv = summary["iap_orders.all.gmv"]
    return f"{view.app_id} daily report {view.day.isoformat()}: {active.text} active users, {gmv.text} GMV"


def render_text(view: ReportView, dashboard_link: DashboardLink | None = None) -> str:
    """The plain-text part of the email: the headline numbers with their changes."""
    lines = [
        f"{view.app_id} · Daily report · {view.day.strftime('%A, %B %-d, %Y')} ({view.timezone})",
        "",
    ]
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
    sections = (
        ("Dashboard", view.dashboard),
        ("Monetization", view.monetization),
        ("Performance", view.performance),
    )
    width = max(len(row.label) for _title, rows in sections for row in rows)
    for title, rows in sections:
        lines.append(title.upper())
        for row in rows:
            lines.append(
                f"  {row.label:<{width}}  {row.text:>12}   vs day before {row.change_day:>9}   "
                f"vs 7 days before {row.change_week:>9}"
            )
        lines.append("")
    lines += [
        f"Money in {view.currency}. {MISSING} means not known "
        "(no metrics for that day, or nothing to divide by).",
        "The full report with charts, retention, funnels and breakdowns "
        "is in the HTML part and the attached PDF.",
    ]
    return "\n".join(lines) + "\n"


def _link_expiry(link: DashboardLink) -> str:
    return link.expires_at.strftime("%Y-%m-%d %H:%M UTC")


def _svg_width(svg: str) -> int:
    match = re.search(r'<svg[^>]*\swidth="([\d.]+)"', svg)
    return round(float(match.group(1))) if match else 640


def _render_chart(chart: Chart) -> tuple[str, ChartImage, bytes]:
    svg = render_svg(chart.spec)
    return chart.chart_id, ChartImage(svg_data_uri(svg), _svg_width(svg)), render_png(chart.spec)


def build_report(
    app_id: str,
    day: date,
    documents: Mapping[date, Mapping[str, Any] | None],
    dashboard_link: DashboardLink | None = None,
) -> RenderedReport:
    """Render the report of ``app_id`` for ``day`` from the metrics documents of its window.

    ``dashboard_link`` goes into the email's parts only: the stored page and PDF carry no token.

    ``documents`` maps the days of :func:`minidrama.report.model.window_days` to their document
    (None where missing). Raises :class:`~minidrama.report.model.MissingMetricsError` when the
    day's own document is missing: a report is never rendered blank.
    """
    view = build_view(app_id, day, documents)
    charts = chart_specs(view)
    # vl-convert runs in native code; two workers overlap SVG/PNG conversion of different charts.
    with ThreadPoolExecutor(max_workers=2) as pool:
        rendered = list(pool.map(_render_chart, charts))
    page_images = {chart_id: image for chart_id, image, _png in rendered}
    email_images = {
        chart_id: ChartImage(f"cid:{chart_content_id(chart_id)}", image.width)
        for chart_id, image, _png in rendered
    }
    html = render_html(view, page_images)
    return RenderedReport(
        app_id=app_id,
        day=day,
        html=html,
        pdf=render_pdf(html),
        email_html=render_html(view, email_images, email=True, dashboard_link=dashboard_link),
        text=render_text(view, dashboard_link),
        subject=subject_line(view),
        email_images={chart_content_id(chart_id): png for chart_id, _image, png in rendered},
        missing_days=view.missing_days,
        view=view,
    )
