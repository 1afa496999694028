"""The report's charts as Vega-Lite specs, rendered by vl-convert (SVG for HTML/PDF, PNG for email).

Spec builders are pure (view-model values in, a spec dict out). Missing days are ``null`` in the
data, which Vega-Lite leaves out of a line: the line breaks there instead of dropping to zero.
Each chart carries its alt text, which holds the numbers it shows: an email read with images off
still tells its story.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import vl_convert

from minidrama.report.format import CURRENCY_SYMBOLS, format_rate, format_value
from minidrama.report.model import FunnelRow, Kind, Number, PieSlice, ReportView, SegmentKind, TrendPoint

__all__ = [
    "Chart",
    "Series",
    "REDEEM_NOTE",
    "chart_specs",
    "trend_alt",
    "render_svg",
    "render_png",
    "svg_data_uri",
    "FONT",
]

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
PALETTE = ["#2f5fd0", "#e0803a", "#2a9d8f", "#c2417a", "#7a5cc7", "#8d99ae"]
# Every chart is this wide in all (axes and legend included): two fit side by side in the 700 px
# email and on A4, and one fits a 360 px phone at its own size, so its 10 px text stays 10 px.
_WIDTH = 326
# d3's SI format writes zero as "0k" next to "1k"; a plain 0 reads better.
_ZERO_LABEL = "datum.value === 0 ? '0' : datum.label"

_CONFIG: dict[str, Any] = {
    "font": FONT,
    "background": "white",
    "view": {"stroke": None},
    "axis": {
        "labelFontSize": 10,
        "titleFontSize": 10,
        "titleFontWeight": "normal",
        "titleColor": "#5b6475",
        "labelColor": "#3b4252",
        "gridColor": "#e7eaf0",
        "domainColor": "#c9ced8",
        "tickColor": "#c9ced8",
    },
    "legend": {"labelFontSize": 10, "titleFontSize": 10, "symbolSize": 80, "labelColor": "#3b4252"},
    "title": {"fontSize": 12, "fontWeight": 600, "anchor": "start", "color": "#1d2433", "offset": 10},
    "range": {"category": PALETTE},
}


@dataclass(frozen=True)
class Chart:
    """One chart of the report: its id (also the email Content-ID's local part), title, alt text
    (the numbers it shows, for images off and screen readers) and spec."""

    chart_id: str
    title: str
    alt: str
    spec: dict[str, Any]


def _base(title: str | dict[str, Any], height: int = 150) -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": title,
        "width": _WIDTH,
        "height": height,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "config": _CONFIG,
        "padding": {"left": 4, "right": 8, "top": 4, "bottom": 4},
    }


@dataclass(frozen=True)
class Series:
    """A line of a trend chart: its label, how to read it from a day, and how its numbers read."""

    label: str
    read: Callable[[TrendPoint], Number | None]
    kind: Kind
    scale: float = 1.0  # the axis unit (a duration's minutes: 60000)


def _trend(
    title: str,
    trends: Sequence[TrendPoint],
    series: Sequence[Series],
    axis_title: str,
    axis_format: str = ",~s",
) -> dict[str, Any]:
    """A line per series over the window's days; a missing day is a gap, not a zero."""
    values = []
    for point in trends:
        for line in series:
            value = line.read(point)
            values.append(
                {
                    "date": point.day.isoformat(),
                    "series": line.label,
                    "value": None if value is None else value / line.scale,
                }
            )
    spec = _base(title)
    spec.update(
        {
            "data": {"values": values},
            "mark": {
                "type": "line",
                "strokeWidth": 2,
                "point": {"size": 14, "filled": True},
                "interpolate": "linear",
            },
            "encoding": {
                "x": {
                    "field": "date",
                    "type": "temporal",
                    "timeUnit": "utcyearmonthdate",
                    "title": None,
                    "axis": {"format": "%b %d", "tickCount": 5, "labelAngle": 0, "labelOverlap": True},
                },
                "y": {
                    "field": "value",
                    "type": "quantitative",
                    "title": axis_title,
                    "axis": {"format": axis_format, "tickCount": 5, "labelExpr": _ZERO_LABEL},
                    "scale": {"zero": True},
                },
                "color": {
                    "field": "series",
                    "type": "nominal",
                    "sort": [line.label for line in series],
                    "title": None,
                    "legend": {"orient": "top", "direction": "horizontal"} if len(series) > 1 else None,
                },
            },
        }
    )
    return spec


def trend_alt(
    trends: Sequence[TrendPoint], series: Sequence[Series], currency: str, span: str | None = None
) -> str:
    """``Active users, last 31 days: 612 → 1,448 (min 590, max 1,512)`` for each series; ``span``
    names the days when they are not the last N (``Nov 23–29``)."""
    span = span or f"last {len(trends)} days"
    parts = []
    for line in series:
        known = [value for value in (line.read(point) for point in trends) if value is not None]
        if not known:
            parts.append(f"{line.label}, {span}: no data")
            continue
        first, last, low, high = (
            format_value(value, line.kind, currency)
            for value in (known[0], known[-1], min(known), max(known))
        )
        parts.append(f"{line.label}, {span}: {first} → {last} (min {low}, max {high})")
    gaps = sum(point.missing for point in trends)
    gap_note = f" No metrics for {gaps} of the days." if gaps else ""
    return "; ".join(parts) + "." + gap_note


def _pie(title: str, slices: Sequence[PieSlice]) -> dict[str, Any]:
    values = [
        {"label": f"{entry.label}  {entry.share * 100:.1f}%", "gmv": entry.gmv, "order": index}
        for index, entry in enumerate(slices)
    ]
    spec = _base(title, height=130)
    spec.update(
        {
            "data": {"values": values},
            "mark": {"type": "arc", "innerRadius": 34, "stroke": "white", "strokeWidth": 1.5},
            "encoding": {
                "theta": {"field": "gmv", "type": "quantitative", "stack": True},
                "order": {"field": "order", "type": "quantitative"},
                "color": {
                    "field": "label",
                    "type": "nominal",
                    "sort": [value["label"] for value in values],
                    "title": "Share of GMV",
                    "legend": {"orient": "right", "labelLimit": 150},
                },
            },
        }
    )
    return spec


def pie_alt(title: str, slices: Sequence[PieSlice], currency: str) -> str:
    shares = ", ".join(
        f"{entry.label} {format_rate(entry.share)} ({format_value(entry.gmv, 'money', currency)})"
        for entry in slices
    )
    return f"{title}: {shares}."


# The redeem order stage is not a step after the TikTok payment panel click the way a recharge is.
REDEEM_NOTE = (
    "Redeem orders spend Beans bought earlier: one recharge buys Beans for several episodes, "
    "so redeem orders can outnumber the payment panel clicks before them (a step above 100%)."
)


def _funnel_text(stage: FunnelRow, first: int) -> str:
    return f"{stage.pv:,}" + (f" ({stage.pv / first * 100:.1f}%)" if first else "")


def _funnel(view: ReportView) -> dict[str, Any]:
    """Page views of each stage; the eight page-view stages are shared, the two orders end them."""
    funnel = view.funnel
    first = funnel.page_views[0].pv if funnel.page_views else 0
    bars = [(stage, "Page view") for stage in funnel.page_views]
    bars += [(funnel.recharge, "Recharge order"), (funnel.redeem, "Redeem order (Beans)")]
    values = [
        {
            "label": f"{stage.step_label}. {stage.short_label}",
            "pv": stage.pv,
            "kind": kind,
            "text": _funnel_text(stage, first),
        }
        for stage, kind in bars
    ]
    # Room right of the longest bar for its label, inside the plot.
    domain_max = max((stage.pv for stage, _kind in bars), default=0) * 1.6 or 1
    spec = _base(
        {
            "text": "Conversion funnel",
            "subtitle": [
                "Page views, and % of entrance exposure.",
                "Redeem orders spend Beans: one recharge buys",
                "Beans for several episodes, so redeems can",
                "outnumber the clicks before them.",
            ],
            "subtitleFontSize": 10,
            "subtitleColor": "#5b6475",
        },
        height=220,
    )
    spec.update(
        {
            "data": {"values": values},
            "encoding": {
                "y": {
                    "field": "label",
                    "type": "nominal",
                    "sort": None,
                    "title": None,
                    "axis": {"labelLimit": 120, "labelFontSize": 10, "ticks": False, "domain": False},
                },
                "x": {
                    "field": "pv",
                    "type": "quantitative",
                    "title": None,
                    "scale": {"domain": [0, domain_max]},
                    "axis": None,
                },
            },
            "layer": [
                {
                    "mark": {"type": "bar", "cornerRadiusEnd": 2, "height": {"band": 0.72}},
                    "encoding": {
                        "color": {
                            "field": "kind",
                            "type": "nominal",
                            "title": None,
                            "scale": {
                                "domain": ["Page view", "Recharge order", "Redeem order (Beans)"],
                                "range": ["#9db4e8", PALETTE[0], PALETTE[1]],
                            },
                            # the axis labels name each bar's kind; a legend would not fit a phone
                            "legend": None,
                        }
                    },
                },
                {
                    "mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 10, "color": "#3b4252"},
                    "encoding": {"text": {"field": "text"}},
                },
            ],
        }
    )
    return spec


def funnel_alt(view: ReportView) -> str:
    funnel = view.funnel
    first = funnel.page_views[0].pv if funnel.page_views else 0
    stages = "; ".join(f"{stage.label} {_funnel_text(stage, first)}" for stage in funnel.stages)
    return f"Conversion funnel, page views (% of entrance exposure): {stages}. {REDEEM_NOTE}"


USERS_SERIES = (
    Series("Active users", lambda point: point.active_users, "count"),
    Series("New users", lambda point: point.new_users, "count"),
)
DURATION_SERIES = (
    Series("Median time per active user", lambda point: point.median_duration_per_user_ms, "duration", 60000),
)
GMV_SERIES = (Series("GMV", lambda point: point.gmv, "money"),)
PAYERS_SERIES = (
    Series("Paying users", lambda point: point.paying_users, "count"),
    Series("Repeat paying users", lambda point: point.repeat_paying_users, "count"),
)


def chart_specs(view: ReportView) -> list[Chart]:
    """Every chart of the report, in page order. A pie without any GMV is left out (the page says so)."""
    symbol = CURRENCY_SYMBOLS.get(view.currency)
    trends = view.trends
    span = None if view.period.kind == "daily" else f"by day, {view.period.short}"

    def trend(
        chart_id: str, title: str, series: Sequence[Series], axis_title: str, axis_format: str = ",~s"
    ) -> Chart:
        return Chart(
            chart_id,
            title,
            trend_alt(trends, series, view.currency, span),
            _trend(title, trends, series, axis_title, axis_format),
        )

    charts = [
        trend("users-trend", "Active and new users", USERS_SERIES, "Users"),
        trend("duration-trend", "Median time per active user (minutes)", DURATION_SERIES, "Minutes", ",.1~f"),
        trend(
            "gmv-trend",
            f"GMV ({symbol or view.currency})",
            GMV_SERIES,
            view.currency,
            ",.2~s" if symbol is None else ",~s",
        ),
        trend("payers-trend", "Paying and repeat paying users", PAYERS_SERIES, "Users"),
    ]
    pies: tuple[tuple[SegmentKind, str], ...] = (("os", "GMV by OS"), ("region", "GMV by region"))
    for kind, title in pies:
        slices = view.gmv_by.get(kind)
        if slices:
            charts.append(
                Chart(f"gmv-by-{kind}", title, pie_alt(title, slices, view.currency), _pie(title, slices))
            )
    charts.append(Chart("funnel", "Conversion funnel", funnel_alt(view), _funnel(view)))
    return charts


def render_svg(spec: Mapping[str, Any]) -> str:
    return str(vl_convert.vegalite_to_svg(dict(spec), vl_version="5.20"))


def render_png(spec: Mapping[str, Any], scale: float = 2.0) -> bytes:
    """A PNG at ``scale`` × the spec's pixel size (2 = sharp on high-density screens)."""
    return bytes(vl_convert.vegalite_to_png(dict(spec), vl_version="5.20", scale=scale))


def svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")
