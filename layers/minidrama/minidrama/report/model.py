"""The report's content, built from metrics documents: pure values in, a typed view model out.

The report for day D reads the documents of D and the 30 days before it (a window of 31).
Everything here is computed from those documents alone (plus, optionally, the day's
:class:`~minidrama.report.health.DataHealth`); a day whose document is missing stays missing
(``None``) all the way to the page, where it reads as "—" or as a gap in a line. A weekly or
monthly report (:func:`build_period_view`) reads its period's range document, the previous
period's, and the daily documents of its days for the trend charts.

The document is read through :class:`Segment` and its parts (the TypedDicts of
:mod:`minidrama.report.documents`: SPEC sections 6 and 7), and
every metric the report shows is a :class:`Metric` whose ``read`` subscripts that shape: a
misspelt key is a type error (mypy), not a KeyError at 8 in the morning. ``Metric.key`` is the
metric's path in the segment, written into the page's ``data-metric`` attributes only (tests
check each against the document).

The retention table is assembled across documents: the dN value of cohort C is published in
the document of day C + N, so the table of the last 30 cohorts needs the whole window.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any, Literal, cast

from minidrama.metrics.schema import CURRENT_SCHEMA_VERSION
from minidrama.report.documents import (
    AnySegment,
    Breakdown,
    CohortRow,
    FunnelStageMetrics,
    MetricsDocument,
    RangeDocument,
    RangeSegment,
    Segment,
)
from minidrama.report.format import (
    change_direction,
    format_change,
    format_count,
    format_rate,
    format_value,
    is_no_change,
)
from minidrama.report.health import DataHealth
from minidrama.report.period import ReportPeriod, span_text

__all__ = [
    "WINDOW_DAYS",
    "COHORT_ROWS",
    "EMAIL_COHORT_ROWS",
    "ReportInputError",
    "MissingMetricsError",
    "Segment",
    "MetricsDocument",
    "Metric",
    "MetricRow",
    "ReportView",
    "window_days",
    "build_view",
    "build_period_view",
    "PeriodDocuments",
    "Baseline",
    "Comparison",
    "RangeDocument",
    "segment_label",
    "FUNNEL_STAGE_LABELS",
]

WINDOW_DAYS = 31  # the day itself and the 30 days before it
RETENTION_DAYS = (1, 7, 14, 30)
DayKey = Literal["d1", "d7", "d14", "d30"]
# A retention day's key in the document (a TypedDict is subscripted by literal keys only).
DAY_KEYS: dict[int, DayKey] = {1: "d1", 7: "d7", 14: "d14", 30: "d30"}
COHORT_ROWS = 30
# The email shows the cohorts of the last two weeks and the one whose D30 was published today;
# the page and the PDF show all 30.
EMAIL_COHORT_ROWS = 14
TOP_VALUES = 5
MAX_OS_COLUMNS = 3  # per-OS columns beside "All": what fits a phone

Kind = Literal["count", "decimal", "rate", "money", "duration", "launch"]
Number = int | float
CohortKind = Literal["new", "active"]
SegmentKind = Literal["os", "region"]


class ReportInputError(ValueError):
    """A metrics document can't be read as the report expects; the message says why."""


class MissingMetricsError(ReportInputError):
    """The metrics document of the report's day does not exist."""


# --- the metrics the report shows, each defined once -------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A number of a segment: its path (``data-metric``), label, kind and how to read it.

    ``of`` names what a rate or an average is taken of ("of active users"): shown beside the
    label wherever the metric is, so no rate reads without its denominator; ``of_range`` is what
    it is of in a range document (a weekly or monthly report), where that differs.
    """

    key: str
    label: str
    kind: Kind
    read: Callable[[AnySegment], Number | None] = field(compare=False, repr=False)
    higher_is_better: bool = True
    of: str = ""
    of_range: str = ""
    label_range: str = ""

    def value(self, segment: AnySegment | None) -> Number | None:
        """The metric in ``segment``; None for a missing segment (a missing day, an absent OS)."""
        return None if segment is None else self.read(segment)

    def over_range(self) -> Metric:
        """The metric as a range document defines it (its ``of`` says so)."""
        return replace(self, of=self.of_range or self.of, label=self.label_range or self.label)


TOTAL_USERS = Metric("dashboard.total_users", "Total users", "count", lambda s: s["dashboard"]["total_users"])
ACTIVE_USERS = Metric(
    "dashboard.active_users", "Active users", "count", lambda s: s["dashboard"]["active_users"]
)
NEW_USERS = Metric("dashboard.new_users", "New users", "count", lambda s: s["dashboard"]["new_users"])
MEDIAN_TIME_PER_USER = Metric(
    "dashboard.median_duration_per_user_ms",
    "Median time per user",
    "duration",
    lambda s: s["dashboard"]["median_duration_per_user_ms"],
    of="median over active users",
)
GMV = Metric("iap_orders.all.gmv", "GMV", "money", lambda s: s["iap_orders"]["all"]["gmv"])
PAYING_USERS = Metric(
    "iap_users.paying_users", "Paying users", "count", lambda s: s["iap_users"]["paying_users"]
)
PAYING_USER_RATE = Metric(
    "iap_users.paying_user_rate",
    "Paying user rate",
    "rate",
    lambda s: s["iap_users"]["paying_user_rate"],
    of="of active users",
)
REPEAT_PAYING_USERS = Metric(
    "iap_users.repeat_paying_users",
    "Repeat paying users",
    "count",
    lambda s: s["iap_users"]["repeat_paying_users"],
    of="2+ recharge orders",
)
REPEAT_PAYING_USER_RATE = Metric(
    "iap_users.repeat_paying_user_rate",
    "Repeat paying user rate",
    "rate",
    lambda s: s["iap_users"]["repeat_paying_user_rate"],
    of="of active users",
)
ARPPU = Metric(
    "iap_users.arppu", "ARPPU", "money", lambda s: s["iap_users"]["arppu"], of="GMV per paying user"
)
AVERAGE_GMV = Metric(
    "iap_orders.all.average_gmv",
    "Average GMV per order",
    "money",
    lambda s: s["iap_orders"]["all"]["average_gmv"],
    of="per recharge order",
)
RECHARGE_ORDERS = Metric(
    "iap_orders.all.recharge_orders",
    "Recharge orders",
    "count",
    lambda s: s["iap_orders"]["all"]["recharge_orders"],
    of="Beans bought with money",
)
REDEEM_ORDERS = Metric(
    "iap_orders.all.redeem_orders",
    "Redeem orders",
    "count",
    lambda s: s["iap_orders"]["all"]["redeem_orders"],
    of="episodes unlocked with Beans",
)
DAY1_RETENTION_NEW = Metric(
    "retention.new.d1.rate",
    "Day-1 retention",
    "rate",
    lambda s: s["retention"]["new"]["d1"]["rate"],
    of="of the day before's new users",
    of_range="of each day's new users, summed over the days but the last",
)
DAY1_RETENTION_ACTIVE = Metric(
    "retention.active.d1.rate",
    "Day-1 retention, active users",
    "rate",
    lambda s: s["retention"]["active"]["d1"]["rate"],
    of="of the day before's active users",
    of_range="of each day's active users, summed over the days but the last",
)
DAY1_COHORT_NEW = Metric(
    "retention.new.d1.cohort_size",
    "New users the day before",
    "count",
    lambda s: s["retention"]["new"]["d1"]["cohort_size"],
    label_range="New users of the cohort days",
    of_range="summed over all days but the last",
)
DAY1_COHORT_ACTIVE = Metric(
    "retention.active.d1.cohort_size",
    "Active users the day before",
    "count",
    lambda s: s["retention"]["active"]["d1"]["cohort_size"],
    label_range="Active users of the cohort days",
    of_range="summed over all days but the last",
)
LOADING_SUCCESS_RATE = Metric(
    "performance.loading_success_rate",
    "Loading success rate",
    "rate",
    lambda s: s["performance"]["loading_success_rate"],
    of="of launch attempts",
)
AVERAGE_LAUNCH = Metric(
    "performance.average_launch_ms",
    "Average launch speed",
    "launch",
    lambda s: s["performance"]["average_launch_ms"],
    higher_is_better=False,
    of="click to first frame",
)

MONETIZATION_METRICS = (
    GMV,
    PAYING_USERS,
    PAYING_USER_RATE,
    REPEAT_PAYING_USERS,
    REPEAT_PAYING_USER_RATE,
    ARPPU,
    AVERAGE_GMV,
    RECHARGE_ORDERS,
    REDEEM_ORDERS,
)
BEHAVIOR_METRICS = (
    Metric("behavior.active_users", "Active users", "count", lambda s: s["behavior"]["active_users"]),
    Metric("behavior.new_users", "New users", "count", lambda s: s["behavior"]["new_users"]),
    Metric(
        "behavior.repeat_users",
        "Repeat users",
        "count",
        lambda s: s["behavior"]["repeat_users"],
        of="2+ launches",
    ),
    Metric(
        "behavior.effectively_active_users",
        "Effectively active users",
        "count",
        lambda s: s["behavior"]["effectively_active_users"],
        of="active, time spent > 0",
    ),
    Metric("behavior.visit_count", "Visits (launches)", "count", lambda s: s["behavior"]["visit_count"]),
    Metric(
        "behavior.average_visit_count",
        "Visits per active user",
        "decimal",
        lambda s: s["behavior"]["average_visit_count"],
    ),
    Metric(
        "behavior.median_duration_per_user_ms",
        "Median time per user",
        "duration",
        lambda s: s["behavior"]["median_duration_per_user_ms"],
        of="median over active users",
    ),
    Metric(
        "behavior.median_duration_per_session_ms",
        "Median time per session",
        "duration",
        lambda s: s["behavior"]["median_duration_per_session_ms"],
    ),
    Metric("behavior.total_users", "Total users to date", "count", lambda s: s["behavior"]["total_users"]),
)
PERFORMANCE_METRICS = (LOADING_SUCCESS_RATE, AVERAGE_LAUNCH)
DAY1_METRICS = (DAY1_COHORT_NEW, DAY1_RETENTION_NEW, DAY1_COHORT_ACTIVE, DAY1_RETENTION_ACTIVE)


@dataclass(frozen=True)
class Kpi:
    """A headline card: its metric and a line saying what the number is of."""

    metric: Metric
    context: Callable[[AnySegment, ReportPeriod], str] = field(compare=False, repr=False)


def _share_text(part: Number | None, whole: Number | None, of: str) -> str:
    return f"{format_rate(part / whole if part is not None and whole else None)} {of}"


def _day1_cohorts(period: ReportPeriod) -> str:
    """The cohort days whose day-1 retention a period's document holds: each day but the last
    (the day before, for a day)."""
    if period.kind == "daily":
        return span_text(period.first - timedelta(days=1), period.first - timedelta(days=1))
    return span_text(period.first, period.last - timedelta(days=1))


KPIS = (
    Kpi(ACTIVE_USERS, lambda s, period: f"launched the app {period.on}"),
    Kpi(
        NEW_USERS,
        lambda s, period: _share_text(
            s["dashboard"]["new_users"], s["dashboard"]["active_users"], "of active users"
        ),
    ),
    Kpi(
        PAYING_USERS,
        lambda s, period: f"{format_rate(s['iap_users']['paying_user_rate'])} of active users",
    ),
    Kpi(
        GMV,
        lambda s, period: f"{format_count(s['iap_orders']['all']['recharge_orders'])} recharge orders",
    ),
    Kpi(
        DAY1_RETENTION_NEW,
        lambda s, period: (
            f"{format_count(s['retention']['new']['d1']['retained'])} of "
            f"{format_count(s['retention']['new']['d1']['cohort_size'])} new users of "
            f"{_day1_cohorts(period)}"
        ),
    ),
    Kpi(ARPPU, lambda s, period: "GMV per paying user"),
    Kpi(MEDIAN_TIME_PER_USER, lambda s, period: "over active users"),
    Kpi(TOTAL_USERS, lambda s, period: f"launched by {period.last.strftime('%b %-d')}, ever"),
)

FUNNEL_STAGE_LABELS = {
    "entrance_exposure": "Entrance exposure",
    "entrance_click": "Entrance click",
    "minis_visit": "Mini app visit",
    "last_free_episode_watch": "Last free episode watched",
    "third_party_payment_panel_show": "Third-party payment panel shown",
    "third_party_payment_panel_click": "Third-party payment panel click",
    "tiktok_payment_panel_show": "TikTok payment panel shown",
    "tiktok_payment_panel_click": "TikTok payment panel click",
    "recharge_order": "Recharge order",
    "redeem_order": "Redeem order",
}
# For the chart's axis, which has to fit a phone.
FUNNEL_SHORT_LABELS = {
    "entrance_exposure": "Exposure",
    "entrance_click": "Click",
    "minis_visit": "Visit",
    "last_free_episode_watch": "Last free ep.",
    "third_party_payment_panel_show": "3rd-party panel",
    "third_party_payment_panel_click": "3rd-party click",
    "tiktok_payment_panel_show": "TikTok panel",
    "tiktok_payment_panel_click": "TikTok click",
    "recharge_order": "Recharge order",
    "redeem_order": "Redeem order",
}

_OS_LABELS = {"ios": "iOS", "android": "Android", "ipados": "iPadOS", "harmonyos": "HarmonyOS"}

AttributeGroup = Literal["profile", "device"]


@dataclass(frozen=True)
class AttributeDefinition:
    group: AttributeGroup
    attribute: str
    label: str
    read: Callable[[AnySegment, CohortKind], Breakdown] = field(compare=False, repr=False)


PROFILE_ATTRIBUTES = (
    AttributeDefinition("profile", "gender", "Gender", lambda s, c: s["profile"][c]["gender"]),
    AttributeDefinition("profile", "age_group", "Age group", lambda s, c: s["profile"][c]["age_group"]),
    AttributeDefinition("profile", "region", "Region", lambda s, c: s["profile"][c]["region"]),
    AttributeDefinition("device", "brand", "Device brand", lambda s, c: s["device"][c]["brand"]),
    AttributeDefinition("device", "model", "Device model", lambda s, c: s["device"][c]["model"]),
    AttributeDefinition(
        "device", "tiktok_version", "TikTok version", lambda s, c: s["device"][c]["tiktok_version"]
    ),
)


# --- the view model ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """What the report's numbers are compared with: the day before, 7 days before, the week before…"""

    heading: str  # a column head: "Day before"
    vs: str  # after a change: "vs day before"
    source: str  # the compared document's day or period ("2026-11-29", "2026-W47"): data-date
    hint: str = ""  # beside "Change" on a phone, where the compared value's column is hidden


@dataclass(frozen=True)
class Comparison:
    """A metric's value in a baseline, and the change from it to the report's value."""

    baseline: Baseline
    value: Number | None
    text: str
    change: str
    tone: Literal["good", "bad", "neutral"]


@dataclass(frozen=True)
class MetricRow:
    """One metric of the report's day or period, with its values in the report's baselines."""

    metric: Metric
    value: Number | None
    previous: tuple[Number | None, ...]  # one per baseline
    baselines: tuple[Baseline, ...]
    currency: str
    context: str = ""  # a KPI card's line under the number

    @property
    def path(self) -> str:
        return self.metric.key

    @property
    def label(self) -> str:
        return self.metric.label

    @property
    def kind(self) -> Kind:
        return self.metric.kind

    @property
    def of(self) -> str:
        return self.metric.of

    @property
    def text(self) -> str:
        return format_value(self.value, self.kind, self.currency)

    @property
    def comparisons(self) -> list[Comparison]:
        return [
            Comparison(
                baseline,
                previous,
                format_value(previous, self.kind, self.currency),
                format_change(self.value, previous, self.kind),
                self._tone(previous),
            )
            for baseline, previous in zip(self.baselines, self.previous, strict=True)
        ]

    def _tone(self, previous: Number | None) -> Literal["good", "bad", "neutral"]:
        direction = change_direction(self.value, previous)
        if direction in {"none", "flat"} or is_no_change(format_change(self.value, previous, self.kind)):
            return "neutral"
        return "good" if (direction == "up") == self.metric.higher_is_better else "bad"


@dataclass(frozen=True)
class LtvRow:
    """One LTV window: ``key`` is its key under ``iap_users.ltv`` (d0, d7, d30; range)."""

    key: str
    label: str  # "Day 7"
    cohort: str  # the cohort's day(s): "2026-11-23", "Nov 1–23"
    cohort_size: int
    revenue: float
    value: float | None


@dataclass(frozen=True)
class PayerOrdersRow:
    key: Literal["all", "new_payers", "returning_payers"]
    label: str
    gmv: float
    average_gmv: float | None
    recharge_orders: int
    redeem_orders: int


@dataclass(frozen=True)
class ProductRow:
    rank: int
    product_id: str
    orders: int
    share: float | None


@dataclass(frozen=True)
class SegmentRow:
    """Users, payers and GMV of one OS or region segment."""

    segment: str
    label: str
    active_users: int
    new_users: int
    paying_users: int
    paying_user_rate: float | None
    gmv: float
    gmv_share: float | None


@dataclass(frozen=True)
class PieSlice:
    label: str
    gmv: float
    share: float


@dataclass(frozen=True)
class RetentionCell:
    """dN of one cohort: ``pending`` (C + N is after the report's last day), ``missing`` (the
    document of C + N is missing) or ``value`` (as the document published it). ``path`` and
    ``source`` say where: the key in the segment and the document's day or period."""

    days: int
    path: str
    source: str
    state: Literal["pending", "missing", "value"]
    rate: float | None = None
    retained: int | None = None
    cohort_size: int | None = None


@dataclass(frozen=True)
class CohortRetention:
    cohort_size: int | None
    cells: dict[int, RetentionCell]  # by N: 1, 7, 14, 30


@dataclass(frozen=True)
class RetentionRow:
    """A cohort day's retention; or, with ``total``, a period's totals over its cohort rows."""

    cohort_date: date
    new: CohortRetention
    active: CohortRetention
    total: bool = False

    def of(self, cohort: CohortKind) -> CohortRetention:
        return self.new if cohort == "new" else self.active


@dataclass(frozen=True)
class AttributeRow:
    value: str
    active_users: int
    new_users: int
    share: float | None
    other: bool


@dataclass(frozen=True)
class AttributeTable:
    group: AttributeGroup
    attribute: str
    label: str
    rows: list[AttributeRow]


@dataclass(frozen=True)
class EntryPointRow:
    entry_point: str
    active_users: int
    new_users: int
    launch_sessions: int
    average_duration_per_session_ms: Number | None


@dataclass(frozen=True)
class FunnelRow:
    """One funnel stage; ``key`` is its path in the segment (``funnel.recharge.3``)."""

    key: str
    step: int
    step_label: str  # "9a" / "9b" for the two order stages
    stage: str
    label: str
    short_label: str
    pv: int
    rate_from_previous: float | None
    rate_from_first: float | None

    @property
    def is_order(self) -> bool:
        return self.stage in ("recharge_order", "redeem_order")

    @property
    def exceeds_previous(self) -> bool:
        return self.rate_from_previous is not None and self.rate_from_previous > 1


@dataclass(frozen=True)
class FunnelView:
    """The eight page-view stages (the same in both funnels, shown once) and the two order stages,
    each measured against the eighth."""

    page_views: list[FunnelRow]
    recharge: FunnelRow
    redeem: FunnelRow

    @property
    def stages(self) -> list[FunnelRow]:
        return [*self.page_views, self.recharge, self.redeem]


@dataclass(frozen=True)
class TrendPoint:
    """One day of the trend charts; every value is None on a day whose document is missing."""

    day: date
    missing: bool
    active_users: Number | None
    new_users: Number | None
    paying_users: Number | None
    repeat_paying_users: Number | None
    gmv: Number | None
    arppu: Number | None
    median_duration_per_user_ms: Number | None
    paying_user_rate: Number | None
    loading_success_rate: Number | None


@dataclass(frozen=True)
class SegmentColumn:
    segment: str
    label: str


@dataclass(frozen=True)
class BySegmentRow:
    metric: Metric
    values: list[Number | None]  # one per column, in column order


@dataclass(frozen=True)
class BySegmentTable:
    """Metrics of the day (rows) for all users and for each OS (columns)."""

    columns: list[SegmentColumn]
    rows: list[BySegmentRow]
    omitted: int = 0  # OS segments left out (the smallest by active users)


@dataclass
class ReportView:
    """Everything the template shows, in the order it shows it.

    ``day`` is the period's last day; ``days`` the days of the trend charts (the daily report's
    window of 31, or the period's own days).
    """

    app_id: str
    period: ReportPeriod
    baselines: tuple[Baseline, ...]
    timezone: str
    currency: str
    generated_at: str
    days: list[date]
    missing_days: list[date]
    dashboard: list[MetricRow]  # the KPI cards
    monetization: list[MetricRow]
    ltv: list[LtvRow]
    payer_orders: list[PayerOrdersRow]
    top_products: list[ProductRow]
    segments: dict[SegmentKind, list[SegmentRow]]
    behavior: list[MetricRow]
    retention: list[RetentionRow]
    retention_by_os: BySegmentTable
    attributes: list[AttributeTable]
    entry_points: list[EntryPointRow]
    funnel: FunnelView
    performance: list[MetricRow]
    performance_by_os: BySegmentTable
    trends: list[TrendPoint]
    gmv_by: dict[SegmentKind, list[PieSlice]] = field(default_factory=dict)
    health: DataHealth | None = None
    retention_total: RetentionRow | None = None  # a period's totals (SPEC 7.2)
    retention_days: tuple[int, ...] = RETENTION_DAYS  # the dN columns shown
    missing_baselines: list[Baseline] = field(default_factory=list)  # a period report's, without a document

    @property
    def day(self) -> date:
        return self.period.last

    def row(self, metric: Metric) -> MetricRow:
        """The report's row of ``metric`` among the KPIs, monetization and performance."""
        for candidate in [*self.dashboard, *self.monetization, *self.performance]:
            if candidate.metric.key == metric.key:
                return candidate
        raise LookupError(f"the report shows no row of {metric.key}")

    @property
    def email_retention(self) -> tuple[list[RetentionRow], list[RetentionRow]]:
        """The email's cohorts: the last :data:`EMAIL_COHORT_ROWS`, and (a daily report) the older
        ones whose D30 was published on the report's day (the rows in between are in the PDF)."""
        recent = self.retention[:EMAIL_COHORT_ROWS]
        oldest = [
            row
            for row in self.retention[EMAIL_COHORT_ROWS:]
            if self.period.kind == "daily"
            and row.cohort_date == self.day - timedelta(days=max(RETENTION_DAYS))
        ]
        return recent, oldest


def window_days(day: date) -> list[date]:
    """The days the report of ``day`` reads, oldest first."""
    return [day - timedelta(days=offset) for offset in range(WINDOW_DAYS - 1, -1, -1)]


RowMaker = Callable[[Metric, str], MetricRow]


@dataclass(frozen=True)
class _Parts:
    """What a daily and a period report read differently; the rest they read alike."""

    ltv: list[LtvRow]
    retention: list[RetentionRow]
    day1_metrics: tuple[Metric, ...]
    retention_total: RetentionRow | None = None
    retention_days: tuple[int, ...] = RETENTION_DAYS
    missing_baselines: list[Baseline] = field(default_factory=list)


def _assemble(
    app_id: str,
    period: ReportPeriod,
    baselines: tuple[Baseline, ...],
    document: MetricsDocument | RangeDocument,
    *,
    row: RowMaker,
    daily: Mapping[date, Segment | None],
    parts: _Parts,
    health: DataHealth | None,
) -> ReportView:
    """The view of ``document`` (the day's or the period's), ``row`` making its metric rows with
    their baselines, ``daily`` the "all" segment of each day of the trend charts."""
    segments: Mapping[str, AnySegment] = document["segments"]
    current = segments["all"]
    breakdown = _segment_breakdown(segments)
    os_columns = _os_columns(segments)
    return ReportView(
        app_id=app_id,
        period=period,
        baselines=baselines,
        timezone=document["timezone"],
        currency=document["currency"],
        generated_at=document["generated_at"],
        days=list(daily),
        missing_days=[day for day, segment in daily.items() if segment is None],
        dashboard=[row(kpi.metric, kpi.context(current, period)) for kpi in KPIS],
        monetization=[row(metric, "") for metric in MONETIZATION_METRICS],
        ltv=parts.ltv,
        payer_orders=_payer_orders(current),
        top_products=_top_products(current),
        segments=breakdown,
        behavior=[row(metric, "") for metric in BEHAVIOR_METRICS],
        retention=parts.retention,
        retention_total=parts.retention_total,
        retention_days=parts.retention_days,
        missing_baselines=parts.missing_baselines,
        retention_by_os=_by_segment(segments, os_columns, parts.day1_metrics),
        attributes=_attributes(current),
        entry_points=_entry_points(current),
        funnel=_funnel(current),
        performance=[row(metric, "") for metric in PERFORMANCE_METRICS],
        performance_by_os=_by_segment(segments, os_columns, PERFORMANCE_METRICS),
        trends=_trends(list(daily), daily),
        gmv_by={kind: _gmv_shares(entries) for kind, entries in breakdown.items()},
        health=health,
    )


def build_view(
    app_id: str,
    day: date,
    documents: Mapping[date, Mapping[str, Any] | None],
    health: DataHealth | None = None,
) -> ReportView:
    """The view model of the daily report of ``app_id`` for ``day``.

    ``documents`` maps days of :func:`window_days` to their metrics document, or to None where
    the document is missing. The day's own document is required (:class:`MissingMetricsError`).
    ``health``, when given, is shown as the report's data health section.
    """
    if documents.get(day) is None:
        raise MissingMetricsError(f"no metrics document for app {app_id!r} on {day.isoformat()}")
    for doc_day, raw in documents.items():
        if raw is not None:
            _check_document(app_id, doc_day, raw)
    typed = {doc_day: cast(MetricsDocument | None, raw) for doc_day, raw in documents.items()}
    today = typed[day]
    assert today is not None
    segment_of = {d: _segment(typed.get(d), "all") for d in window_days(day)}
    current = today["segments"]["all"]
    before = (day - timedelta(days=1), day - timedelta(days=7))
    baselines = (
        Baseline("Day before", "vs day before", before[0].isoformat()),
        Baseline("7 days before", "vs 7 days before", before[1].isoformat(), hint="(7 d)"),
    )

    def row(metric: Metric, context: str) -> MetricRow:
        previous = tuple(metric.value(segment_of[d]) for d in before)
        return MetricRow(metric, metric.read(current), previous, baselines, today["currency"], context)

    parts = _Parts(ltv=_ltv(current), retention=_retention_rows(day, typed), day1_metrics=DAY1_METRICS)
    return _assemble(
        app_id, ReportPeriod.day(day), baselines, today, row=row, daily=segment_of, parts=parts, health=health
    )


@dataclass(frozen=True)
class PeriodDocuments:
    """What a weekly or monthly report reads: the period's range document (None: missing), the
    previous period's, and the daily documents of the period's days (None where missing)."""

    document: Mapping[str, Any] | None
    previous: Mapping[str, Any] | None
    daily: Mapping[date, Mapping[str, Any] | None]


def build_period_view(
    app_id: str,
    period: ReportPeriod,
    document: Mapping[str, Any] | None,
    previous: Mapping[str, Any] | None,
    daily: Mapping[date, Mapping[str, Any] | None],
    health: DataHealth | None = None,
) -> ReportView:
    """The view model of the weekly or monthly report of ``app_id`` for ``period``.

    ``document`` is the period's range document (required: :class:`MissingMetricsError`),
    ``previous`` the previous period's (None when it is missing: its column reads "—"), and
    ``daily`` maps the period's days to their daily documents (None where missing) for the trend
    charts. Every number but the trends is the range document's: distinct users of the period,
    never sums of days.
    """
    if document is None:
        raise MissingMetricsError(f"no metrics document for app {app_id!r} for {period.partition}")
    _check_range_document(app_id, period, document)
    if previous is not None:
        _check_range_document(app_id, period.previous(), previous)
    for doc_day, raw in daily.items():
        if raw is not None:
            _check_document(app_id, doc_day, raw)
    own = cast(RangeDocument, document)
    before = cast(RangeDocument | None, previous)
    current = own["segments"]["all"]
    baselines = (
        Baseline(f"{period.noun.capitalize()} before", f"vs {period.noun} before", period.previous().label),
    )

    def row(metric: Metric, context: str) -> MetricRow:
        previous_value = metric.value(None if before is None else before["segments"].get("all"))
        return MetricRow(
            metric.over_range(), metric.read(current), (previous_value,), baselines, own["currency"], context
        )

    retention, total = _range_retention(period, current)
    known = tuple(n for n in RETENTION_DAYS if any(row.new.cells[n].state != "pending" for row in retention))
    parts = _Parts(
        ltv=_range_ltv(period, current),
        retention=retention,
        day1_metrics=tuple(metric.over_range() for metric in DAY1_METRICS),
        retention_total=total,
        retention_days=known or RETENTION_DAYS[:1],
        missing_baselines=list(baselines) if before is None else [],
    )
    segment_of = {d: _segment(cast(MetricsDocument | None, daily.get(d)), "all") for d in period.days}
    return _assemble(app_id, period, baselines, own, row=row, daily=segment_of, parts=parts, health=health)


def _check_document(app_id: str, day: date, document: Mapping[str, Any]) -> None:
    where = f"metrics document of {app_id!r} for {day.isoformat()}"
    _check_envelope(where, document)
    if document.get("date") != day.isoformat():
        raise ReportInputError(f"{where} says it is for date {document.get('date')!r}")


def _check_range_document(app_id: str, period: ReportPeriod, document: Mapping[str, Any]) -> None:
    where = f"metrics document of {app_id!r} for {period.partition}"
    _check_envelope(where, document)
    span = (document.get("kind"), document.get("from"), document.get("to"))
    if span != ("range", period.first.isoformat(), period.last.isoformat()):
        raise ReportInputError(
            f"{where} is not the range document of {period.first.isoformat()} … {period.last.isoformat()}"
            f" (kind {span[0]!r}, from {span[1]!r}, to {span[2]!r})"
        )


def _check_envelope(where: str, document: Mapping[str, Any]) -> None:
    version = document.get("schema_version")
    if version != CURRENT_SCHEMA_VERSION:
        raise ReportInputError(
            f"{where} has schema_version {version!r}; this report reads {CURRENT_SCHEMA_VERSION}"
        )
    if "all" not in document.get("segments", {}):
        raise ReportInputError(f"{where} has no segment 'all'")


def _segment(document: MetricsDocument | None, name: str) -> Segment | None:
    return None if document is None else document["segments"].get(name)


def _ltv(current: Segment) -> list[LtvRow]:
    ltv = current["iap_users"]["ltv"]
    windows = (("d0", ltv["d0"]), ("d7", ltv["d7"]), ("d30", ltv["d30"]))
    return [
        LtvRow(
            key,
            f"Day {key[1:]}",
            value["cohort_date"],
            value["cohort_size"],
            value["revenue"],
            value["value"],
        )
        for key, value in windows
    ]


def _range_ltv(period: ReportPeriod, current: RangeSegment) -> list[LtvRow]:
    """The period's LTV: its new users' revenue in the period, then from their first day through
    day N of it, for those whose day N is in the period. A day-N window longer than the period
    (day 7 of a week, day 30 of a 30-day month) has no cohort and is left out."""
    ltv = current["iap_users"]["ltv"]
    whole = span_text(period.first, period.last)
    rows = [
        LtvRow("range", period.noun.capitalize(), whole, **ltv["range"]),
        LtvRow("d0", "Day 0", whole, **ltv["d0"]),
    ]
    for key, days, value in (("d7", 7, ltv["d7"]), ("d30", 30, ltv["d30"])):
        last = period.last - timedelta(days=days)
        if last >= period.first:
            rows.append(LtvRow(key, f"Day {days}", span_text(period.first, last), **value))
    return rows


def _payer_orders(current: AnySegment) -> list[PayerOrdersRow]:
    orders = current["iap_orders"]
    groups: tuple[tuple[Literal["all", "new_payers", "returning_payers"], str], ...] = (
        ("all", "All"),
        ("new_payers", "New payers"),
        ("returning_payers", "Returning payers"),
    )
    return [
        PayerOrdersRow(
            key=key,
            label=label,
            gmv=orders[key]["gmv"],
            average_gmv=orders[key]["average_gmv"],
            recharge_orders=orders[key]["recharge_orders"],
            redeem_orders=orders[key]["redeem_orders"],
        )
        for key, label in groups
    ]


def _top_products(current: AnySegment) -> list[ProductRow]:
    orders = current["iap_orders"]["all"]
    redeem_orders = orders["redeem_orders"]
    return [
        ProductRow(
            rank=rank,
            product_id=product["product_id"],
            orders=product["orders"],
            share=product["orders"] / redeem_orders if redeem_orders else None,
        )
        for rank, product in enumerate(orders["top_redeemed_products"], start=1)
    ]


def segment_label(name: str) -> str:
    """``os:ios`` → ``iOS``, ``region:US`` → ``US``."""
    kind, _, value = name.partition(":")
    if kind == "os":
        return _OS_LABELS.get(value, value.capitalize() if value else "(none)")
    return value


def _segment_breakdown(segments: Mapping[str, AnySegment]) -> dict[SegmentKind, list[SegmentRow]]:
    """Per OS and per region: users, payers and GMV of each segment, biggest GMV first."""
    breakdown: dict[SegmentKind, list[SegmentRow]] = {"os": [], "region": []}
    total_gmv = GMV.read(segments["all"])
    for name, segment in segments.items():
        kind = name.partition(":")[0]
        if kind not in ("os", "region"):
            continue
        gmv = segment["iap_orders"]["all"]["gmv"]
        breakdown[cast(SegmentKind, kind)].append(
            SegmentRow(
                segment=name,
                label=segment_label(name),
                active_users=segment["dashboard"]["active_users"],
                new_users=segment["dashboard"]["new_users"],
                paying_users=segment["iap_users"]["paying_users"],
                paying_user_rate=segment["iap_users"]["paying_user_rate"],
                gmv=gmv,
                gmv_share=gmv / total_gmv if total_gmv else None,
            )
        )
    for entries in breakdown.values():
        entries.sort(key=lambda entry: (-entry.gmv, -entry.active_users, entry.label))
    return breakdown


def _gmv_shares(entries: list[SegmentRow], slices: int = 6) -> list[PieSlice]:
    """Pie slices: the biggest ``slices - 1`` segments by GMV, the rest as "Other"."""
    paying = [entry for entry in entries if entry.gmv > 0]
    total = sum(entry.gmv for entry in paying)
    if not total:
        return []
    shown = paying if len(paying) <= slices else paying[: slices - 1]
    rest = paying[len(shown) :]
    result = [(entry.label, entry.gmv) for entry in shown]
    if rest:
        result.append((f"Other ({len(rest)})", round(sum(entry.gmv for entry in rest), 2)))
    return [PieSlice(label, gmv, gmv / total) for label, gmv in result]


def _os_columns(segments: Mapping[str, AnySegment]) -> tuple[list[SegmentColumn], int]:
    """ "All" and the biggest OS segments by active users (at most :data:`MAX_OS_COLUMNS`)."""
    systems = sorted(
        (name for name in segments if name.startswith("os:")),
        key=lambda name: (-segments[name]["dashboard"]["active_users"], name),
    )
    columns = [SegmentColumn("all", "All")]
    columns += [SegmentColumn(name, segment_label(name)) for name in systems[:MAX_OS_COLUMNS]]
    return columns, max(len(systems) - MAX_OS_COLUMNS, 0)


def _by_segment(
    segments: Mapping[str, AnySegment],
    os_columns: tuple[list[SegmentColumn], int],
    metrics: tuple[Metric, ...],
) -> BySegmentTable:
    columns, omitted = os_columns
    return BySegmentTable(
        columns=columns,
        rows=[
            BySegmentRow(metric, [metric.value(segments.get(column.segment)) for column in columns])
            for metric in metrics
        ],
        omitted=omitted,
    )


def _retention_rows(day: date, documents: Mapping[date, MetricsDocument | None]) -> list[RetentionRow]:
    """The last 30 cohorts (newest first) × d1/d7/d14/d30, for new and for active users."""
    rows = []
    for offset in range(1, COHORT_ROWS + 1):
        cohort_date = day - timedelta(days=offset)
        rows.append(
            RetentionRow(
                cohort_date=cohort_date,
                new=_cohort_retention(day, cohort_date, "new", documents),
                active=_cohort_retention(day, cohort_date, "active", documents),
            )
        )
    return rows


def _cohort_retention(
    day: date, cohort_date: date, cohort: CohortKind, documents: Mapping[date, MetricsDocument | None]
) -> CohortRetention:
    size: int | None = None
    cells: dict[int, RetentionCell] = {}
    for n in RETENTION_DAYS:
        measured_on = cohort_date + timedelta(days=n)
        path, source = f"retention.{cohort}.d{n}.rate", measured_on.isoformat()
        if measured_on > day:
            cells[n] = RetentionCell(n, path, source, "pending")
            continue
        segment = _segment(documents.get(measured_on), "all")
        if segment is None:
            cells[n] = RetentionCell(n, path, source, "missing")
            continue
        published = segment["retention"][cohort][DAY_KEYS[n]]
        if published["cohort_date"] != cohort_date.isoformat():
            raise ReportInputError(
                f"retention {cohort} d{n} of {measured_on.isoformat()} is for cohort "
                f"{published['cohort_date']}, expected {cohort_date.isoformat()}"
            )
        size = published["cohort_size"]
        cells[n] = RetentionCell(
            n, path, source, "value", published["rate"], published["retained"], published["cohort_size"]
        )
    if size is None:
        # No dN published yet (or all missing): the cohort's own document knows its size.
        own = _segment(documents.get(cohort_date), "all")
        if own is not None:
            size = own["dashboard"]["new_users"] if cohort == "new" else own["dashboard"]["active_users"]
    return CohortRetention(size, cells)


def _range_retention(period: ReportPeriod, current: RangeSegment) -> tuple[list[RetentionRow], RetentionRow]:
    """A period's cohort rows (newest first) as its range document publishes them, and its totals."""
    source = period.label

    def cohort_row(cohort: CohortKind, index: int, row: CohortRow) -> CohortRetention:
        cells = {}
        for n in RETENTION_DAYS:
            value = row[DAY_KEYS[n]]
            path = f"retention.{cohort}.cohorts.{index}.d{n}.rate"
            cells[n] = (
                RetentionCell(n, path, source, "pending")
                if value is None
                else RetentionCell(
                    n, path, source, "value", value["rate"], value["retained"], row["cohort_size"]
                )
            )
        return CohortRetention(row["cohort_size"], cells)

    def totals(cohort: CohortKind) -> CohortRetention:
        by_days = current["retention"][cohort]
        cells = {}
        for n in RETENTION_DAYS:
            total = by_days[DAY_KEYS[n]]
            path = f"retention.{cohort}.d{n}.rate"
            cells[n] = (
                RetentionCell(
                    n, path, source, "value", total["rate"], total["retained"], total["cohort_size"]
                )
                if total["cohort_size"]
                else RetentionCell(n, path, source, "pending")
            )
        return CohortRetention(sum(row["cohort_size"] for row in by_days["cohorts"]), cells)

    new_rows, active_rows = current["retention"]["new"]["cohorts"], current["retention"]["active"]["cohorts"]
    if [row["cohort_date"] for row in new_rows] != [day.isoformat() for day in period.days] or [
        row["cohort_date"] for row in active_rows
    ] != [day.isoformat() for day in period.days]:
        raise ReportInputError(f"the retention cohorts of {period.partition} are not its days, one row each")
    rows = [
        RetentionRow(
            day, cohort_row("new", index, new_rows[index]), cohort_row("active", index, active_rows[index])
        )
        for index, day in enumerate(period.days)
    ]
    rows.reverse()
    return rows, RetentionRow(period.first, totals("new"), totals("active"), total=True)


def _attributes(current: AnySegment) -> list[AttributeTable]:
    """Top values of each profile / device attribute: active and new users, with the active share."""
    tables = []
    for definition in PROFILE_ATTRIBUTES:
        active = definition.read(current, "active")
        new = definition.read(current, "new")
        total_active = sum(active.values())
        ordered = sorted(
            set(active) | set(new), key=lambda value: (-active.get(value, 0), -new.get(value, 0), value)
        )
        # "Other (1 value)" would hide a value in the space it takes to show it
        cut = TOP_VALUES if len(ordered) > TOP_VALUES + 1 else len(ordered)
        shown, rest = ordered[:cut], ordered[cut:]
        rows = [
            AttributeRow(
                value=value,
                active_users=active.get(value, 0),
                new_users=new.get(value, 0),
                share=active.get(value, 0) / total_active if total_active else None,
                other=False,
            )
            for value in shown
        ]
        if rest:
            rest_active = sum(active.get(value, 0) for value in rest)
            rows.append(
                AttributeRow(
                    value=f"Other ({len(rest)} values)",
                    active_users=rest_active,
                    new_users=sum(new.get(value, 0) for value in rest),
                    share=rest_active / total_active if total_active else None,
                    other=True,
                )
            )
        tables.append(AttributeTable(definition.group, definition.attribute, definition.label, rows))
    return tables


def _entry_points(current: AnySegment) -> list[EntryPointRow]:
    rows = [
        EntryPointRow(
            entry_point=name,
            active_users=values["active_users"],
            new_users=values["new_users"],
            launch_sessions=values["launch_sessions"],
            average_duration_per_session_ms=values["average_duration_per_session_ms"],
        )
        for name, values in current["entry_points"].items()
    ]
    rows.sort(key=lambda row: (-row.launch_sessions, -row.active_users, row.entry_point))
    return rows


def _funnel_row(order_type: str, index: int, stage: FunnelStageMetrics, step_label: str = "") -> FunnelRow:
    return FunnelRow(
        key=f"funnel.{order_type}.{index}",
        step=index + 1,
        step_label=step_label or str(index + 1),
        stage=stage["stage"],
        label=FUNNEL_STAGE_LABELS.get(stage["stage"], stage["stage"]),
        short_label=FUNNEL_SHORT_LABELS.get(stage["stage"], stage["stage"]),
        pv=stage["pv"],
        rate_from_previous=stage["rate_from_previous"],
        rate_from_first=stage["rate_from_first"],
    )


def _funnel(current: AnySegment) -> FunnelView:
    """Both funnels as one: their page-view stages are the same events (SPEC section 6), so they
    are shown once, followed by the recharge and the redeem order stage."""
    recharge, redeem = current["funnel"]["recharge"], current["funnel"]["redeem"]
    if len(recharge) != len(redeem) or not recharge:
        raise ReportInputError(f"the funnels have {len(recharge)} and {len(redeem)} stages; expected 9 each")
    last = len(recharge) - 1
    for index in range(last):
        if recharge[index] != redeem[index]:
            raise ReportInputError(
                f"funnel stage {index + 1} ({recharge[index]['stage']}) differs between the recharge "
                "and the redeem funnel; its page views are the same events in both"
            )
    return FunnelView(
        page_views=[_funnel_row("recharge", index, stage) for index, stage in enumerate(recharge[:last])],
        recharge=_funnel_row("recharge", last, recharge[last], f"{last + 1}a"),
        redeem=_funnel_row("redeem", last, redeem[last], f"{last + 1}b"),
    )


def _trends(days: list[date], segment_of: Mapping[date, Segment | None]) -> list[TrendPoint]:
    """One point per day of the window; every series is None on a day whose document is missing."""
    return [
        TrendPoint(
            day=d,
            missing=segment_of[d] is None,
            active_users=ACTIVE_USERS.value(segment_of[d]),
            new_users=NEW_USERS.value(segment_of[d]),
            paying_users=PAYING_USERS.value(segment_of[d]),
            repeat_paying_users=REPEAT_PAYING_USERS.value(segment_of[d]),
            gmv=GMV.value(segment_of[d]),
            arppu=ARPPU.value(segment_of[d]),
            median_duration_per_user_ms=MEDIAN_TIME_PER_USER.value(segment_of[d]),
            paying_user_rate=PAYING_USER_RATE.value(segment_of[d]),
            loading_success_rate=LOADING_SUCCESS_RATE.value(segment_of[d]),
        )
        for d in days
    ]
