"""How numbers read in the report: counts, rates, money, durations and changes.

Every formatter takes the raw value of the metrics document and returns display text. A value
that is ``None`` (a zero denominator, or a day whose document is missing) reads as an em dash,
never as 0 or NaN, so a reader can tell "nothing happened" from "nothing is known".
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

__all__ = [
    "MISSING",
    "CURRENCY_SYMBOLS",
    "format_count",
    "format_decimal",
    "format_rate",
    "format_money",
    "format_duration",
    "format_launch_speed",
    "format_value",
    "relative_change",
    "format_change",
    "format_timestamp",
    "is_no_change",
    "change_direction",
]

MISSING = "—"

# A symbol only where it is unambiguous; every other currency reads as "1,234.50 CHF".
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "KRW": "₩", "INR": "₹"}
_ZERO_DECIMAL_CURRENCIES = {"JPY", "KRW", "VND", "IDR", "CLP", "ISK", "HUF", "TWD"}


def _is_missing(value: float | int | None) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def format_count(value: float | int | None) -> str:
    """``12345`` → ``12,345``."""
    if _is_missing(value):
        return MISSING
    assert value is not None
    return f"{round(value):,}"


def format_decimal(value: float | int | None, places: int = 2) -> str:
    """A plain ratio such as average visits per user: ``1.456`` → ``1.46``."""
    if _is_missing(value):
        return MISSING
    return f"{value:,.{places}f}"


def format_rate(value: float | int | None, places: int = 1) -> str:
    """A ratio as a percentage: ``0.1234`` → ``12.3%``. Funnel rates above 1 read above 100%."""
    if _is_missing(value):
        return MISSING
    assert value is not None
    return f"{value * 100:,.{places}f}%"


def format_money(value: float | int | None, currency: str) -> str:
    """``1234.5`` in USD → ``$1,234.50``; in CHF → ``1,234.50 CHF``; negative as ``-$3.00``."""
    if _is_missing(value):
        return MISSING
    assert value is not None
    places = 0 if currency in _ZERO_DECIMAL_CURRENCIES else 2
    sign = "-" if value < 0 else ""
    amount = f"{abs(value):,.{places}f}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"


def format_duration(milliseconds: float | int | None) -> str:
    """A time spent, in human form: ``252000`` → ``4m 12s``, ``3900000`` → ``1h 05m``.

    Under a minute keeps one decimal below ten seconds (``4.2s``) so short sessions don't all read ``0s``.
    """
    if _is_missing(milliseconds):
        return MISSING
    assert milliseconds is not None
    seconds = milliseconds / 1000
    if seconds < 10:
        text = f"{seconds:.1f}s"
        return "0s" if text == "0.0s" else text
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_launch_speed(milliseconds: float | int | None) -> str:
    """Click to first frame: ``850`` → ``850 ms``, ``1234.5`` → ``1.23 s``."""
    if _is_missing(milliseconds):
        return MISSING
    assert milliseconds is not None
    if milliseconds < 1000:
        return f"{round(milliseconds)} ms"
    return f"{milliseconds / 1000:,.2f} s"


def format_value(value: float | int | None, kind: str, currency: str = "USD") -> str:
    """Format by kind: ``count``, ``decimal``, ``rate``, ``money``, ``duration`` or ``launch``."""
    if kind == "count":
        return format_count(value)
    if kind == "decimal":
        return format_decimal(value)
    if kind == "rate":
        return format_rate(value)
    if kind == "money":
        return format_money(value, currency)
    if kind == "duration":
        return format_duration(value)
    if kind == "launch":
        return format_launch_speed(value)
    raise ValueError(f"unknown value kind {kind!r}")


def relative_change(current: float | int | None, previous: float | int | None) -> float | None:
    """``(current - previous) / previous``, or None when either is unknown or previous is 0."""
    if _is_missing(current) or _is_missing(previous) or previous == 0:
        return None
    assert current is not None and previous is not None
    return (current - previous) / abs(previous)


def format_change(current: float | int | None, previous: float | int | None, kind: str) -> str:
    """The change between two values of one metric: rates in percentage points, others relative.

    ``+4.2%`` / ``-1.0%`` for counts, money and durations; ``+1.3 pp`` for rates, because a
    relative change of a rate (12% → 13% is "+8.3%") misleads more than it tells.
    """
    if kind == "rate":
        if _is_missing(current) or _is_missing(previous):
            return MISSING
        assert current is not None and previous is not None
        return _signed((current - previous) * 100, " pp")
    change = relative_change(current, previous)
    if change is None:
        return MISSING
    return _signed(change * 100, "%")


def _signed(number: float, unit: str) -> str:
    """``+4.2%`` / ``−1.0%`` (a true minus sign); a change that rounds to zero reads ``0.0%``, unsigned."""
    text = f"{number:+.1f}"
    if text in {"+0.0", "-0.0"}:
        return f"0.0{unit}"
    return text.replace("-", "−") + unit


def is_no_change(text: str) -> bool:
    """Whether a :func:`format_change` text says the value did not change (to the shown precision)."""
    return text in {"0.0%", "0.0 pp"}


def format_timestamp(value: str | None) -> str:
    """An ISO 8601 timestamp as ``2026-11-29 04:26 UTC`` (as given when it carries no offset)."""
    if not value:
        return MISSING
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def change_direction(current: float | int | None, previous: float | int | None) -> str:
    """``up``, ``down``, ``flat`` or ``none`` (unknown): the CSS class of a change."""
    if _is_missing(current) or _is_missing(previous):
        return "none"
    assert current is not None and previous is not None
    if math.isclose(current, previous, rel_tol=1e-9, abs_tol=1e-12):
        return "flat"
    return "up" if current > previous else "down"
