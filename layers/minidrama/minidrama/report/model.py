"""The report's content, built from metrics documents: pure values in, a typed view model out.

The report for day D reads the documents of D and the 30 days before it (a window of 31).
Everything here is computed from those documents alone (plus, optionally, the day's
:class:`~minidrama.report.health.DataHealth`); a day whose document is missing stays missing
(``None``) all the way to the page, where it reads as "—" or as a gap in a line.

The document is read through :class:`Segment` and its parts (TypedDicts of SPEC section 6), and
every metric the report shows is a :class:`Metric` whose ``read`` subscripts that shape: a
misspelt key is a type error (mypy), not a KeyError at 8 in the morning. ``Metric.key`` is the
metric's path in the segment, written into the page's ``data-metric`` attributes only (tests
check each against the document).

The retention table is assembled across documents: the dN value of cohort C is published in
the document of day C + N, so the table of the last 30 cohorts needs the whole window.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal, TypedDict, cast

from minidrama.metrics.schema import CURRENT_SCHEMA_VERSION
from minidrama.report.format import (
    change_direction,
    format_change,
    format_count,
    format_rate,
    format_value,
    is_no_change,
)
from minidrama.report.health import DataHealth

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
    "segment_label",
    "FUNNEL_STAGE_LABELS",
]

WINDOW_DAYS = 31  # the day itself and the 30 days before it
RETENTION_DAYS = (1, 7, 14, 30)
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


# --- the document's shape (SPEC section 6), as the report reads it -----------------------------


class DashboardMetrics(TypedDict):
    total_users: int
    active_users: int
    new_users: int
    median_duration_per_user_ms: Number | None


class BehaviorMetrics(TypedDict):
    total_users: int
    new_users: int
    repeat_users: int
    visit_count: int
    average_visit_count: float | None
    median_duration_per_user_ms: Number | None
    median_duration_per_session_ms: Number | None
    active_users: int
    effectively_active_users: int


class RetentionValue(TypedDict):
    cohort_date: str
    cohort_size: int
    retained: int
    rate: float | None


class RetentionByDays(TypedDict):
    d1: RetentionValue
    d7: RetentionValue
    d14: RetentionValue
    d30: RetentionValue


class RetentionMetrics(TypedDict):
    new: RetentionByDays
    active: RetentionByDays


Breakdown = dict[str, int]


class ProfileBreakdown(TypedDict):
    gender: Breakdown
    age_group: Breakdown
    region: Breakdown


class DeviceBreakdown(TypedDict):
    brand: Breakdown
    model: Breakdown
    tiktok_version: Breakdown


class ProfileMetrics(TypedDict):
    new: ProfileBreakdown
    active: ProfileBreakdown


class DeviceMetrics(TypedDict):
    new: DeviceBreakdown
    active: DeviceBreakdown


class EntryPointMetrics(TypedDict):
    active_users: int
    new_users: int
    launch_sessions: int
    average_duration_per_session_ms: Number | None


class FunnelStageMetrics(TypedDict):
    stage: str
    pv: int
    rate_from_previous: float | None
    rate_from_first: float | None


class FunnelMetrics(TypedDict):
    recharge: list[FunnelStageMetrics]
    redeem: list[FunnelStageMetrics]


class LtvValue(TypedDict):
    cohort_date: str
    cohort_size: int
    revenue: float
    value: float | None


class LtvByDays(TypedDict):
    d0: LtvValue
    d7: LtvValue
    d30: LtvValue


class IapUsersMetrics(TypedDict):
    paying_users: int
    paying_user_rate: float | None
    repeat_paying_users: int
    repeat_paying_user_rate: float | None
    arppu: float | None
    ltv: LtvByDays


class RedeemedProduct(TypedDict):
    product_id: str
    orders: int


class OrderMetrics(TypedDict):
    gmv: float
    average_gmv: float | None
    recharge_orders: int
    redeem_orders: int
    top_redeemed_products: list[RedeemedProduct]


class IapOrdersMetrics(TypedDict):
    all: OrderMetrics
    new_payers: OrderMetrics
    returning_payers: OrderMetrics


class PerformanceMetrics(TypedDict):
    loading_success_rate: float | None
    average_launch_ms: Number | None


class Segment(TypedDict):
    """One segment ``M`` of a daily document (SPEC section 6)."""

    dashboard: DashboardMetrics
    behavior: BehaviorMetrics
    retention: RetentionMetrics
    profile: ProfileMetrics
    device: DeviceMetrics
    entry_points: dict[str, EntryPointMetrics]
    funnel: FunnelMetrics
    iap_users: IapUsersMetrics
    iap_orders: IapOrdersMetrics
    performance: PerformanceMetrics


class MetricsDocument(TypedDict):
    schema_version: int
    app_id: str
    date: str
    timezone: str
    currency: str
    generated_at: str
    segments: dict[str, Segment]


# --- the metrics the report shows, each defined once -------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A number of a segment: its path (``data-metric``), label, kind and how to read it.

    ``of`` names what a rate or an average is taken of ("of active users"): shown beside the
    label wherever the metric is, so no rate reads without its denominator.
    """

    key: str
    label: str
    kind: Kind
    read: Callable[[Segment], Number | None] = field(compare=False, repr=False)
    higher_is_better: bool = True
    of: str = ""

    def value(self, segment: Segment | None) -> Number | None:
        """The metric in ``segment``; None for a missing segment (a missing day, an absent OS)."""
        return None if segment is None else self.read(segment)


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
)
DAY1_RETENTION_ACTIVE = Metric(
    "retention.active.d1.rate",
    "Day-1 retention, active users",
    "rate",
    lambda s: s["retention"]["active"]["d1"]["rate"],
    of="of the day before's active users",
)
DAY1_COHORT_NEW = Metric(
    "retention.new.d1.cohort_size",
    "New users the day before",
    "count",
    lambda s: s["retention"]["new"]["d1"]["cohort_size"],
)
DAY1_COHORT_ACTIVE = Metric(
    "retention.active.d1.cohort_size",
    "Active users the day before",
    "count",
    lambda s: s["retention"]["active"]["d1"]["cohort_size"],
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


@dataclass(frozen=True)
class Kpi:
    """A headline card: its metric and a line saying what the number is of."""

    metric: Metric
    context: Callable[[Segment, date], str] = field(compare=False, repr=False)


def _share_text(part: Number | None, whole: Number | None, of: str) -> str:
    return f"{format_rate(part / whole if part is not None and whole else None)} {of}"


def _short_day(day: date) -> str:
    return day.strftime("%b %-d")


KPIS = (
    Kpi(ACTIVE_USERS, lambda s, day: f"launched the app on {_short_day(day)}"),
    Kpi(
        NEW_USERS,
        lambda s, day: _share_text(
            s["dashboard"]["new_users"], s["dashboard"]["active_users"], "of active users"
        ),
    ),
    Kpi(
        PAYING_USERS,
        lambda s, day: f"{format_rate(s['iap_users']['paying_user_rate'])} of active users",
    ),
    Kpi(GMV, lambda s, day: f"{format_count(s['iap_orders']['all']['recharge_orders'])} recharge orders"),
    Kpi(
        DAY1_RETENTION_NEW,
        lambda s, day: (
            f"{format_count(s['retention']['new']['d1']['retained'])} of "
            f"{format_count(s['retention']['new']['d1']['cohort_size'])} new users of "
            f"{_short_day(day - timedelta(days=1))}"
        ),
    ),
    Kpi(ARPPU, lambda s, day: "GMV per paying user"),
    Kpi(MEDIAN_TIME_PER_USER, lambda s, day: "over active users"),
    Kpi(TOTAL_USERS, lambda s, day: f"launched by {_short_day(day)}, ever"),
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
    read: Callable[[Segment, CohortKind], Breakdown] = field(compare=False, repr=False)


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
class MetricRow:
    """One metric of the day with its value the day before and 7 days before."""

    metric: Metric
    value: Number | None
    day_before: Number | None
    week_before: Number | None
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
    def day_before_text(self) -> str:
        return format_value(self.day_before, self.kind, self.currency)

    @property
    def week_before_text(self) -> str:
        return format_value(self.week_before, self.kind, self.currency)

    @property
    def change_day(self) -> str:
        return format_change(self.value, self.day_before, self.kind)

    @property
    def change_week(self) -> str:
        return format_change(self.value, self.week_before, self.kind)

    @property
    def tone_day(self) -> str:
        return self._tone(self.day_before)

    @property
    def tone_week(self) -> str:
        return self._tone(self.week_before)

    def _tone(self, previous: Number | None) -> str:
        direction = change_direction(self.value, previous)
        if direction in {"none", "flat"} or is_no_change(format_change(self.value, previous, self.kind)):
            return "neutral"
        return "good" if (direction == "up") == self.metric.higher_is_better else "bad"


@dataclass(frozen=True)
class LtvRow:
    key: Literal["d0", "d7", "d30"]
    days: int
    cohort_date: str
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
    """dN of one cohort: ``pending`` (C + N is after the report's day), ``missing`` (the document
    of C + N is missing) or ``value`` (as that document published it)."""

    days: int
    measured_on: date
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
    cohort_date: date
    new: CohortRetention
    active: CohortRetention

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
    """Everything the template shows, in the order it shows it."""

    app_id: str
    day: date
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

    def row(self, metric: Metric) -> MetricRow:
        """The day's row of ``metric`` among the KPIs, monetization and performance."""
        for candidate in [*self.dashboard, *self.monetization, *self.performance]:
            if candidate.metric == metric:
                return candidate
        raise LookupError(f"the report shows no row of {metric.key}")

    @property
    def email_retention(self) -> tuple[list[RetentionRow], list[RetentionRow]]:
        """The email's cohorts: the last :data:`EMAIL_COHORT_ROWS`, and the older ones whose D30 was
        published on the report's day (the rows in between are in the PDF)."""
        recent = self.retention[:EMAIL_COHORT_ROWS]
        oldest = [
            row
            for row in self.retention[EMAIL_COHORT_ROWS:]
            if row.cohort_date == self.day - timedelta(days=max(RETENTION_DAYS))
        ]
        return recent, oldest


def window_days(day: date) -> list[date]:
    """The days the report of ``day`` reads, oldest first."""
    return [day - timedelta(days=offset) for offset in range(WINDOW_DAYS - 1, -1, -1)]


def build_view(
    app_id: str,
    day: date,
    documents: Mapping[date, Mapping[str, Any] | None],
    health: DataHealth | None = None,
) -> ReportView:
    """The view model of the report of ``app_id`` for ``day``.

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
    days = window_days(day)
    segment_of = {d: _segment(typed.get(d), "all") for d in days}
    current = today["segments"]["all"]
    currency = today["currency"]

    def row(metric: Metric, context: str = "") -> MetricRow:
        return MetricRow(
            metric=metric,
            value=metric.read(current),
            day_before=metric.value(segment_of[day - timedelta(days=1)]),
            week_before=metric.value(segment_of[day - timedelta(days=7)]),
            currency=currency,
            context=context,
        )

    segments = _segment_breakdown(today)
    os_columns = _os_columns(today)
    return ReportView(
        app_id=app_id,
        day=day,
        timezone=today["timezone"],
        currency=currency,
        generated_at=today["generated_at"],
        days=days,
        missing_days=[d for d in days if typed.get(d) is None],
        dashboard=[row(kpi.metric, kpi.context(current, day)) for kpi in KPIS],
        monetization=[row(metric) for metric in MONETIZATION_METRICS],
        ltv=_ltv(current),
        payer_orders=_payer_orders(current),
        top_products=_top_products(current),
        segments=segments,
        behavior=[row(metric) for metric in BEHAVIOR_METRICS],
        retention=_retention_rows(day, typed),
        retention_by_os=_by_segment(
            today,
            os_columns,
            (DAY1_COHORT_NEW, DAY1_RETENTION_NEW, DAY1_COHORT_ACTIVE, DAY1_RETENTION_ACTIVE),
        ),
        attributes=_attributes(current),
        entry_points=_entry_points(current),
        funnel=_funnel(current),
        performance=[row(metric) for metric in PERFORMANCE_METRICS],
        performance_by_os=_by_segment(today, os_columns, PERFORMANCE_METRICS),
        trends=_trends(days, segment_of),
        gmv_by={kind: _gmv_shares(entries) for kind, entries in segments.items()},
        health=health,
    )


def _check_document(app_id: str, day: date, document: Mapping[str, Any]) -> None:
    where = f"metrics document of {app_id!r} for {day.isoformat()}"
    version = document.get("schema_version")
    if version != CURRENT_SCHEMA_VERSION:
        raise ReportInputError(
            f"{where} has schema_version {version!r}; this report reads {CURRENT_SCHEMA_VERSION}"
        )
    if document.get("date") != day.isoformat():
        raise ReportInputError(f"{where} says it is for date {document.get('date')!r}")
    if "all" not in document.get("segments", {}):
        raise ReportInputError(f"{where} has no segment 'all'")


def _segment(document: MetricsDocument | None, name: str) -> Segment | None:
    return None if document is None else document["segments"].get(name)


def _ltv(current: Segment) -> list[LtvRow]:
    ltv = current["iap_users"]["ltv"]
    keys: tuple[Literal["d0", "d7", "d30"], ...] = ("d0", "d7", "d30")
    return [
        LtvRow(
            key=key,
            days=int(key[1:]),
            cohort_date=ltv[key]["cohort_date"],
            cohort_size=ltv[key]["cohort_size"],
            revenue=ltv[key]["revenue"],
            value=ltv[key]["value"],
        )
        for key in keys
    ]


def _payer_orders(current: Segment) -> list[PayerOrdersRow]:
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


def _top_products(current: Segment) -> list[ProductRow]:
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


def _segment_breakdown(document: MetricsDocument) -> dict[SegmentKind, list[SegmentRow]]:
    """Per OS and per region: users, payers and GMV of each segment, biggest GMV first."""
    breakdown: dict[SegmentKind, list[SegmentRow]] = {"os": [], "region": []}
    total_gmv = GMV.read(document["segments"]["all"])
    for name, segment in document["segments"].items():
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


def _os_columns(document: MetricsDocument) -> tuple[list[SegmentColumn], int]:
    """ "All" and the biggest OS segments by active users (at most :data:`MAX_OS_COLUMNS`)."""
    systems = sorted(
        (name for name in document["segments"] if name.startswith("os:")),
        key=lambda name: (-document["segments"][name]["dashboard"]["active_users"], name),
    )
    columns = [SegmentColumn("all", "All")]
    columns += [SegmentColumn(name, segment_label(name)) for name in systems[:MAX_OS_COLUMNS]]
    return columns, max(len(systems) - MAX_OS_COLUMNS, 0)


def _by_segment(
    document: MetricsDocument,
    os_columns: tuple[list[SegmentColumn], int],
    metrics: tuple[Metric, ...],
) -> BySegmentTable:
    columns, omitted = os_columns
    return BySegmentTable(
        columns=columns,
        rows=[
            BySegmentRow(
                metric, [metric.value(document["segments"].get(column.segment)) for column in columns]
            )
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


def _published_retention(segment: Segment, cohort: CohortKind, days: int) -> RetentionValue:
    by_days = segment["retention"][cohort]
    if days == 1:
        return by_days["d1"]
    if days == 7:
        return by_days["d7"]
    if days == 14:
        return by_days["d14"]
    return by_days["d30"]


def _cohort_retention(
    day: date, cohort_date: date, cohort: CohortKind, documents: Mapping[date, MetricsDocument | None]
) -> CohortRetention:
    size: int | None = None
    cells: dict[int, RetentionCell] = {}
    for n in RETENTION_DAYS:
        measured_on = cohort_date + timedelta(days=n)
        if measured_on > day:
            cells[n] = RetentionCell(n, measured_on, "pending")
            continue
        segment = _segment(documents.get(measured_on), "all")
        if segment is None:
            cells[n] = RetentionCell(n, measured_on, "missing")
            continue
        published = _published_retention(segment, cohort, n)
        if published["cohort_date"] != cohort_date.isoformat():
            raise ReportInputError(
                f"retention {cohort} d{n} of {measured_on.isoformat()} is for cohort "
                f"{published['cohort_date']}, expected {cohort_date.isoformat()}"
            )
        size = published["cohort_size"]
        cells[n] = RetentionCell(
            n, measured_on, "value", published["rate"], published["retained"], published["cohort_size"]
        )
    if size is None:
        # No dN published yet (or all missing): the cohort's own document knows its size.
        own = _segment(documents.get(cohort_date), "all")
        if own is not None:
            size = own["dashboard"]["new_users"] if cohort == "new" else own["dashboard"]["active_users"]
    return CohortRetention(size, cells)


def _attributes(current: Segment) -> list[AttributeTable]:
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


def _entry_points(current: Segment) -> list[EntryPointRow]:
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


def _funnel(current: Segment) -> FunnelView:
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
