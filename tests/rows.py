"""Accepted-row builders for the tests of the queue and the writer (rows as validation returns them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from minidrama.schema import EVENT_COLUMNS

RECEIVED_AT = datetime(2026, 11, 28, 12, 0, 0, 500_000, tzinfo=UTC)


def make_row(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid accepted row with every column; ``n`` varies the ids and the time."""
    row: dict[str, Any] = dict.fromkeys((name for name, _kind in EVENT_COLUMNS), None)
    row.update(
        event_id=f"evt-{n:06d}",
        event_name="app_launch",
        event_time=datetime(2026, 11, 28, 10, 15, 0, 123_000, tzinfo=UTC) + timedelta(seconds=n),
        received_at=RECEIVED_AT,
        user_id=f"user-{n % 97}",
        session_id=f"session-{n}",
        os="ios",
        region="US",
        entry_point="feed",
        success=True,
        launch_ms=800 + n % 50,
        properties="{}",
    )
    row.update(overrides)
    return row


def make_order(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """A recharge order row with exact money."""
    base = make_row(
        n,
        event_name="recharge_order",
        session_id=None,
        entry_point=None,
        success=None,
        launch_ms=None,
        order_id=f"order-{n}",
        amount=Decimal("4.990000"),
        original_amount=Decimal("4.99"),
        currency="USD",
        beans=500,
        product_id="pack-500",
    )
    base.update(overrides)
    return base
