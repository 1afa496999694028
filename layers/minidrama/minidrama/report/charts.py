"""The report's charts as Vega-Lite specs, rendered by vl-convert (SVG for HTML/PDF, PNG for email).

Spec builders are pure (view-model values in, a spec dict out). Missing days are ``null`` in the
data, which Vega-Lite leaves out of a line: the line breaks there instead of dropping to zero.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import vl_convert

from minidrama.report.format import CURRENCY_SYMBOLS
from minidrama.report.model import ReportView

__all__ = [
    "Chart",
    "chart_specs",
    "render_svg",
    "render_png",
    "svg_data_uri",
    "FONT",
]

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
PALETTE = ["#2f5fd0", "#e0803a", "#2a9d8f", "#c2417a", "#7a5cc7", "#8d99ae"]
_WIDTH = 340  # a half-width chart: two fit side by side on A4 and in a 700 px email
_FULL_WIDTH = 640
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
    """One chart of the report: its id (also the email Content-ID's local part), title and spec."""

    chart_id: str
    title: str
    spec: dict[str, Any]


def _base(title: str, width: int = _WIDTH, height: int = 170) -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": title,
        "width": width,
        "height": height,
        "config": _CONFIG,
        "padding": {"left": 4, "right": 8, "top": 4, "bottom": 4},
    }


def _trend(
    title: str,
    trends: Sequence[Mapping[str, Any]],
    series: Mapping[str, str],
    axis_title: str,
    axis_format: str = ",~s",
) -> dict[str, Any]:
    """A line per series over the window's days; a missing day is a gap, not a zero."""
    values = [
        {"date": row["date"], "series": label, "value": row[name]}
        for row in trends
        for name, label in series.items()
    ]
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
                    "axis": {"format": "%b %d", "tickCount": 6, "labelAngle": 0, "labelOverlap": True},
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
                    "sort": list(series.values()),
                    "title": None,
                    "legend": {"orient": "top", "direction": "horizontal"} if len(series) > 1 else None,
                },
            },
        }
    )
    return spec


def _pie(title: str, slices: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    values = [
        {
            "label": f"{entry['label']}  {entry['share'] * 100:.1f}%",
            "gmv": entry["gmv"],
            "order": index,
        }
        for index, entry in enumerate(slices)
    ]
    spec = _base(title, width=150, height=150)
    spec.update(
        {
            "data": {"values": values},
            "mark": {"type": "arc", "innerRadius": 38, "stroke": "white", "strokeWidth": 1.5},
            "encoding": {
                "theta": {"field": "gmv", "type": "quantitative", "stack": True},
                "order": {"field": "order", "type": "quantitative"},
                "color": {
                    "field": "label",
                    "type": "nominal",
                    "sort": [value["label"] for value in values],
                    "title": "Share of GMV",
                    "legend": {"orient": "right", "labelLimit": 160},
                },
            },
        }
    )
    return spec


def _funnel(view: ReportView) -> dict[str, Any]:
    """Page views of each stage; the eight page-view stages are shared, the two orders end them."""
    recharge, redeem = view.funnels["recharge"], view.funnels["redeem"]
    bars = [{**stage, "kind": "Page view"} for stage in recharge[:-1]]
    bars += [{**recharge[-1], "kind": "Recharge order"}, {**redeem[-1], "kind": "Redeem order"}]
    first = recharge[0]["pv"] if recharge else 0
    values = [
        {
            "label": f"{index}. {bar['label']}",
            "pv": bar["pv"],
            "kind": bar["kind"],
            "text": f"{bar['pv']:,}" + (f"  ({bar['pv'] / first * 100:.1f}%)" if first else ""),
        }
        for index, bar in enumerate(bars, start=1)
    ]
    spec = _base(
        "Conversion funnel (page views; % of entrance exposure)", width=_FULL_WIDTH - 260, height=230
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
                    "axis": {"labelLimit": 230, "labelFontSize": 10, "ticks": False, "domain": False},
                },
                "x": {
                    "field": "pv",
                    "type": "quantitative",
                    "title": "Page views",
                    "axis": {"format": ",~s", "tickCount": 6, "labelExpr": _ZERO_LABEL},
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
                                "domain": ["Page view", "Recharge order", "Redeem order"],
                                "range": ["#9db4e8", PALETTE[0], PALETTE[1]],
                            },
                            "legend": {"orient": "bottom", "direction": "horizontal"},
                        }
                    },
                },
                {
                    "mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 9.5, "color": "#3b4252"},
                    "encoding": {"text": {"field": "text"}},
                },
            ],
        }
    )
    return spec


def chart_specs(view: ReportView) -> list[Chart]:
    """Every chart of the report, in page order. A pie without any GMV is left out (the page says so)."""
    symbol = CURRENCY_SYMBOLS.get(view.currency)
    money_title = f"{view.currency}"
    charts = [
        Chart(
            "users-trend",
            "Active and new users",
            _trend(
                "Active and new users",
                view.trends,
                {"active_users": "Active users", "new_users": "New users"},
                "Users",
            ),
        ),
        Chart(
            "duration-trend",
            "Median time per active user",
            _trend(
                "Median time per active user (minutes)",
                [
                    {
                        **row,
                        "minutes": None
                        if row["median_duration_per_user_ms"] is None
                        else row["median_duration_per_user_ms"] / 60000,
                    }
                    for row in view.trends
                ],
                {"minutes": "Median minutes per user"},
                "Minutes",
                ",.1~f",
            ),
        ),
        Chart(
            "gmv-trend",
            "GMV",
            _trend(
                f"GMV ({symbol or view.currency})",
                view.trends,
                {"gmv": "GMV"},
                money_title,
                ",.2~s" if symbol is None else ",~s",
            ),
        ),
        Chart(
            "payers-trend",
            "Paying users",
            _trend(
                "Paying and repeat paying users",
                view.trends,
                {"paying_users": "Paying users", "repeat_paying_users": "Repeat paying users"},
                "Users",
            ),
        ),
    ]
    for kind, title in (("os", "GMV by OS"), ("region", "GMV by region")):
        if view.gmv_by.get(kind):
            charts.append(Chart(f"gmv-by-{kind}", title, _pie(title, view.gmv_by[kind])))
    charts.append(Chart("funnel", "Conversion funnel", _funnel(view)))
    return charts


def render_svg(spec: Mapping[str, Any]) -> str:
    return str(vl_convert.vegalite_to_svg(dict(spec), vl_version="5.20"))


def render_png(spec: Mapping[str, Any], scale: float = 2.0) -> bytes:
    """A PNG at ``scale`` × the spec's pixel size (2 = sharp on high-density screens)."""
    return bytes(vl_convert.vegalite_to_png(dict(spec), vl_version="5.20", scale=scale))


def svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")
