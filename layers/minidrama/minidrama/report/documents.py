"""The metrics documents as the report reads them: TypedDicts of SPEC section 6 (a day) and
section 7 (a range: a week or a month), so that reading a key the document does not have is a
type error (mypy), not a KeyError at 8 in the morning."""

from __future__ import annotations

from typing import TypedDict

__all__ = [
    "DashboardMetrics",
    "BehaviorMetrics",
    "RetentionTotal",
    "RetentionValue",
    "RetentionByDays",
    "RetentionMetrics",
    "CohortReturn",
    "CohortRow",
    "RangeRetentionByDays",
    "RangeRetentionMetrics",
    "Breakdown",
    "ProfileBreakdown",
    "DeviceBreakdown",
    "ProfileMetrics",
    "DeviceMetrics",
    "EntryPointMetrics",
    "FunnelStageMetrics",
    "FunnelMetrics",
    "LtvTotal",
    "LtvValue",
    "LtvByDays",
    "RangeLtv",
    "IapUsersMetrics",
    "RangeIapUsersMetrics",
    "RedeemedProduct",
    "OrderMetrics",
    "IapOrdersMetrics",
    "PerformanceMetrics",
    "Segment",
    "RangeSegment",
    "AnySegment",
    "MetricsDocument",
    "RangeDocument",
]

Number = int | float


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


class RetentionTotal(TypedDict):
    cohort_size: int
    retained: int
    rate: float | None


class RetentionValue(RetentionTotal):
    cohort_date: str


class RetentionByDays(TypedDict):
    d1: RetentionValue
    d7: RetentionValue
    d14: RetentionValue
    d30: RetentionValue


class RetentionMetrics(TypedDict):
    new: RetentionByDays
    active: RetentionByDays


class CohortReturn(TypedDict):
    retained: int
    rate: float | None


class CohortRow(TypedDict):
    """One cohort day of a range document's retention; dN is None when C + N is after the range."""

    cohort_date: str
    cohort_size: int
    d1: CohortReturn | None
    d7: CohortReturn | None
    d14: CohortReturn | None
    d30: CohortReturn | None


class RangeRetentionByDays(TypedDict):
    cohorts: list[CohortRow]
    d1: RetentionTotal
    d7: RetentionTotal
    d14: RetentionTotal
    d30: RetentionTotal


class RangeRetentionMetrics(TypedDict):
    new: RangeRetentionByDays
    active: RangeRetentionByDays


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


class LtvTotal(TypedDict):
    cohort_size: int
    revenue: float
    value: float | None


class LtvValue(LtvTotal):
    cohort_date: str


class LtvByDays(TypedDict):
    d0: LtvValue
    d7: LtvValue
    d30: LtvValue


class RangeLtv(TypedDict):
    range: LtvTotal
    d0: LtvTotal
    d7: LtvTotal
    d30: LtvTotal


class _IapUsers(TypedDict):
    paying_users: int
    paying_user_rate: float | None
    repeat_paying_users: int
    repeat_paying_user_rate: float | None
    arppu: float | None


class IapUsersMetrics(_IapUsers):
    ltv: LtvByDays


class RangeIapUsersMetrics(_IapUsers):
    ltv: RangeLtv


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


class _Segment(TypedDict):
    dashboard: DashboardMetrics
    behavior: BehaviorMetrics
    profile: ProfileMetrics
    device: DeviceMetrics
    entry_points: dict[str, EntryPointMetrics]
    funnel: FunnelMetrics
    iap_orders: IapOrdersMetrics
    performance: PerformanceMetrics


class Segment(_Segment):
    """One segment ``M`` of a daily document (SPEC section 6)."""

    retention: RetentionMetrics
    iap_users: IapUsersMetrics


class RangeSegment(_Segment):
    """One segment of a range document (SPEC section 7): retention and LTV have their range forms."""

    retention: RangeRetentionMetrics
    iap_users: RangeIapUsersMetrics


AnySegment = Segment | RangeSegment


class MetricsDocument(TypedDict):
    schema_version: int
    app_id: str
    date: str
    timezone: str
    currency: str
    generated_at: str
    segments: dict[str, Segment]


RangeDocument = TypedDict(
    "RangeDocument",
    {
        "schema_version": int,
        "app_id": str,
        "kind": str,
        "from": str,
        "to": str,
        "timezone": str,
        "currency": str,
        "generated_at": str,
        "segments": dict[str, RangeSegment],
    },
)
