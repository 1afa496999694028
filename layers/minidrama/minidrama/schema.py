"""The columns of the events Parquet files, shared by the writer and the metrics engine.

Every known property has a typed column; properties that are not known for the event's
name are kept together as one JSON string in ``properties``. Partition values (app, UTC date,
hour) live in the path, Hive style, not in the files.

This module names types as plain strings so that it imports without pyarrow (the metrics
function reads Parquet through DuckDB and does not ship pyarrow).
"""

from __future__ import annotations

__all__ = [
    "EVENT_COLUMNS",
    "AMOUNT_SCALE",
    "KNOWN_EVENT_NAMES",
    "FUNNEL_PAGE_VIEWS",
    "ORDER_EVENT_NAMES",
    "KNOWN_PROPERTIES",
]

# Money is kept exactly as decimal(38, AMOUNT_SCALE): converted amounts are rounded half-even
# to this many places once, at ingestion, and summed exactly afterwards.
AMOUNT_SCALE = 6

# (column, logical type). Logical types: string, bool, int64, timestamp (UTC, microseconds),
# decimal (38, AMOUNT_SCALE).
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "string"),
    ("event_name", "string"),
    ("event_time", "timestamp"),
    ("received_at", "timestamp"),
    ("user_id", "string"),
    ("session_id", "string"),
    ("os", "string"),
    ("region", "string"),
    # app_launch
    ("entry_point", "string"),
    ("success", "bool"),
    ("launch_ms", "int64"),
    ("device_brand", "string"),
    ("device_model", "string"),
    ("tiktok_version", "string"),
    ("gender", "string"),
    ("age_group", "string"),
    # session_end
    ("duration_ms", "int64"),
    # recharge_order / redeem_order
    ("order_id", "string"),
    ("amount", "decimal"),  # in the app's reporting currency
    ("original_amount", "decimal"),  # as sent, in `currency`
    ("currency", "string"),  # as sent
    ("beans", "int64"),
    ("product_id", "string"),
    # everything else that was sent in `properties`, as a JSON object string ("{}" when none)
    ("properties", "string"),
)

FUNNEL_PAGE_VIEWS: tuple[str, ...] = (
    "entrance_exposure",
    "entrance_click",
    "minis_visit",
    "last_free_episode_watch",
    "third_party_payment_panel_show",
    "third_party_payment_panel_click",
    "tiktok_payment_panel_show",
    "tiktok_payment_panel_click",
)

ORDER_EVENT_NAMES: tuple[str, ...] = ("recharge_order", "redeem_order")

KNOWN_EVENT_NAMES: frozenset[str] = frozenset(
    ("app_launch", "session_end", *ORDER_EVENT_NAMES, *FUNNEL_PAGE_VIEWS)
)

# Properties with a typed column, per event name (others go to `properties`).
KNOWN_PROPERTIES: dict[str, tuple[str, ...]] = {
    "app_launch": (
        "entry_point",
        "success",
        "launch_ms",
        "device_brand",
        "device_model",
        "tiktok_version",
        "gender",
        "age_group",
    ),
    "session_end": ("duration_ms",),
    "recharge_order": ("order_id", "amount", "currency", "beans", "product_id"),
    "redeem_order": ("order_id", "product_id", "beans"),
}
