"""The event rules of the contract (SPEC section 4): one implementation for the API, the CLI and the writer.

:func:`validate_events` takes a batch of decoded JSON values and returns the accepted events as
rows (dicts with exactly the keys of :data:`minidrama.schema.EVENT_COLUMNS`, in that order,
values of the columns' logical types) and one :class:`Rejection` per rejected item, carrying
every rule the item broke. An item never raises: whatever was sent is either accepted or
rejected with at least one reason, each reason starting with the name of the field
(``"event_time: must be RFC 3339 with an offset, got '2026-11-28 10:00'"``). Properties are
named without a ``properties.`` prefix: no property shares its name with a top-level field.

Choices where the contract is silent, made here once for every entry point:

- Values must have the JSON type the rule names; nothing is coerced (``"42"`` is not an
  integer, ``42`` is not a ``user_id``, ``true`` is not an integer).
- Integers: ``5.0`` is accepted as ``5`` (JavaScript SDKs cannot tell the two apart, and a
  caller parsing with ``parse_float=Decimal`` sees ``Decimal("5.0")``); ``5.5`` is rejected.
  Integer columns are int64, so ``0 <= n <= 2**63 - 1``.
- ``null`` is the same as absent: an optional field that is ``null`` takes its default, a
  required one that is ``null`` is reported as required. ``"properties": null`` means ``{}``.
- Top-level keys other than the contract's fields are ignored (not stored): new SDK versions
  can send more without being rejected by an older deployment. Unknown *properties* are kept,
  as a compact JSON object with sorted keys, in the ``properties`` column.
- Identifiers (``event_id``, ``user_id``, ``session_id``, ``order_id``, ``product_id``,
  ``entry_point``) are 1-128 characters; ``os`` is 1-32 characters, stored lower-cased;
  ``device_brand``, ``device_model``, ``tiktok_version``, ``gender`` and ``age_group`` are
  0-128 characters, stored as sent. Text must be valid Unicode (no lone surrogates, which
  JSON can smuggle in as ``"\\ud800"`` and which Parquet and UTF-8 cannot store).
- ``event_time``: RFC 3339 ``date-time`` (``T``/``t`` separator, ``Z``/``z`` or ``±HH:MM``
  offset, any number of fractional digits); naive times and dates without a time are rejected.
  Fractions beyond microseconds are truncated (never rounded into the next second). Leap
  seconds (``:60``) are rejected: Python and Parquet timestamps cannot hold them. There is no
  lower bound: late events of any age are accepted; the upper bound is receipt + 24 h inclusive.
- ``region``: any case of an officially assigned ISO 3166-1 alpha-2 code, stored upper-cased;
  user-assigned codes such as ``XK`` are rejected.
- ``currency``: any case of an ISO 4217 code (:data:`minidrama.iso_codes.CURRENCY_CODES`),
  stored upper-cased; the amount must then convert to the app's reporting currency with the
  configured rates, or the event is rejected with that reason.
- ``amount``: a finite JSON number, ``0 < amount <= 1,000,000,000,000`` (enough for any order
  in any currency, including ones with large unit counts such as IDR or VND), with at most
  :data:`~minidrama.schema.AMOUNT_SCALE` decimal places, so that ``original_amount`` is stored
  exactly in a ``decimal(38, AMOUNT_SCALE)`` column. The converted ``amount`` is rounded half-even
  to that scale once, here.
- Free-form ``properties`` are limited to 32,768 characters of stored JSON (an analytics event is
  small; an SQS message is at most 256 KiB). Non-integral numbers there are stored as JSON numbers
  with double precision, as JSON readers (Athena, JavaScript) read them anyway.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from minidrama.config import Rates
from minidrama.iso_codes import COUNTRY_CODES, CURRENCY_CODES
from minidrama.schema import AMOUNT_SCALE, EVENT_COLUMNS, KNOWN_PROPERTIES

__all__ = [
    "Rejection",
    "ValidationResult",
    "validate_events",
    "validate_event",
    "recharge_order_columns",
    "MAX_ID_LENGTH",
    "MAX_OS_LENGTH",
    "MAX_TEXT_LENGTH",
    "MAX_AMOUNT",
    "MAX_INT",
    "MAX_PROPERTIES_LENGTH",
    "MAX_FUTURE",
    "EVENT_NAME_PATTERN",
]

MAX_ID_LENGTH = 128
MAX_OS_LENGTH = 32
MAX_TEXT_LENGTH = 128
MAX_AMOUNT = Decimal(10) ** 12
MAX_INT = 2**63 - 1
MAX_PROPERTIES_LENGTH = 32_768
MAX_FUTURE = timedelta(hours=24)

EVENT_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-][0-9]{2}):([0-9]{2}))"
)
_AMOUNT_QUANTUM = Decimal(1).scaleb(-AMOUNT_SCALE)
# 38 significant digits is what decimal(38, AMOUNT_SCALE) holds: a converted amount that does not
# fit makes quantize() signal instead of producing a value the writer could not store.
_DECIMAL_CONTEXT = Context(prec=38, rounding=ROUND_HALF_EVEN)
_EMPTY_ROW: dict[str, Any] = dict.fromkeys(name for name, _ in EVENT_COLUMNS)
_SESSION_REQUIRED = frozenset(("app_launch", "session_end"))
_APP_LAUNCH_TEXTS = ("device_brand", "device_model", "tiktok_version", "gender", "age_group")
_PROPERTIES_ENCODER_OPTIONS: dict[str, Any] = {
    "sort_keys": True,
    "separators": (",", ":"),
    "ensure_ascii": False,
    "allow_nan": False,
}


@dataclass(frozen=True)
class Rejection:
    """One rejected input item and every rule it broke."""

    index: int  # position in the input list
    event_id: str | None  # the item's event_id when it was a valid one, else None
    errors: list[str]  # each message starts with the field's name
    raw: Any  # the item as it was sent


@dataclass(frozen=True)
class ValidationResult:
    accepted: list[dict[str, Any]]
    rejected: list[Rejection]


def validate_events(
    events: list[Any], *, received_at: datetime, currency: str, rates: Rates
) -> ValidationResult:
    """Validate a batch: accepted rows in input order, and a :class:`Rejection` per bad item.

    ``received_at`` (timezone-aware) is when the batch arrived; it bounds ``event_time`` and is
    stored in every row. ``currency`` is the app's reporting currency, ``rates`` the configured
    conversion rates.
    """
    received_utc = _as_utc(received_at)
    latest = received_utc + MAX_FUTURE
    accepted: list[dict[str, Any]] = []
    rejected: list[Rejection] = []
    for index, item in enumerate(events):
        row, errors = _validate(item, received_utc, latest, currency, rates)
        if row is not None:
            accepted.append(row)
        else:
            event_id = item.get("event_id") if isinstance(item, dict) else None
            rejected.append(Rejection(index, event_id if _is_valid_id(event_id) else None, errors, item))
    return ValidationResult(accepted, rejected)


def validate_event(
    event: Any, *, received_at: datetime, currency: str, rates: Rates
) -> tuple[dict[str, Any] | None, list[str]]:
    """One item: ``(row, [])`` when accepted, ``(None, errors)`` when rejected."""
    received_utc = _as_utc(received_at)
    return _validate(event, received_utc, received_utc + MAX_FUTURE, currency, rates)


def _as_utc(received_at: datetime) -> datetime:
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError(f"received_at must be timezone-aware, got {received_at!r}")
    return received_at.astimezone(UTC)


def _validate(
    event: Any, received_at: datetime, latest: datetime, currency: str, rates: Rates
) -> tuple[dict[str, Any] | None, list[str]]:
    if not isinstance(event, dict):
        return None, [f"event: must be a JSON object, got {_describe(event)}"]
    errors: list[str] = []
    row = _EMPTY_ROW.copy()
    get = event.get

    row["event_id"] = _identifier(errors, event, "event_id", get("event_id"), True)

    name = get("event_name")
    if isinstance(name, str) and EVENT_NAME_PATTERN.fullmatch(name):
        row["event_name"] = name
    else:
        name = None
        errors.append(
            _required(event, "event_name")
            if get("event_name") is None
            else f"event_name: must match ^[a-z][a-z0-9_]{{0,63}}$, got {_describe(get('event_name'))}"
        )

    value = get("event_time")
    if isinstance(value, str):
        event_time = _parse_event_time(value)
        if isinstance(event_time, str):
            errors.append(event_time)
        elif event_time > latest:
            errors.append(
                "event_time: must not be more than 24 h after receipt "
                f"({_rfc3339(received_at)}), got {_describe(value)}"
            )
        else:
            row["event_time"] = event_time
    else:
        errors.append(_wrong(event, "event_time", value, "must be an RFC 3339 string"))
    row["received_at"] = received_at

    row["user_id"] = _identifier(errors, event, "user_id", get("user_id"), True)
    row["session_id"] = _identifier(errors, event, "session_id", get("session_id"), name in _SESSION_REQUIRED)

    os_name = _text(errors, event, "os", get("os"), True, 1, MAX_OS_LENGTH)
    if os_name is not None:
        row["os"] = os_name.lower()

    value = get("region")
    if isinstance(value, str) and value.isascii() and value.upper() in COUNTRY_CODES:
        row["region"] = value.upper()
    else:
        errors.append(_wrong(event, "region", value, "must be an ISO 3166-1 alpha-2 country code"))

    properties = get("properties")
    if properties is None:
        properties = {}
    elif not isinstance(properties, dict):
        errors.append(f"properties: must be an object, got {_describe(properties)}")
        properties = None

    if properties is not None:
        rules = _PROPERTY_RULES.get(name) if name is not None else None
        if rules is None:  # funnel page views and custom events: no typed properties
            extra = properties
        else:
            check, typed = rules
            check(errors, properties, row, currency, rates)
            extra = {key: val for key, val in properties.items() if key not in typed}
        row["properties"] = _properties_json(errors, extra) if extra else "{}"

    if errors:
        return None, errors
    return row, errors


# --- event_time --------------------------------------------------------------------------------

_OFFSETS: dict[str, timedelta] = {}


def _parse_event_time(value: str) -> datetime | str:
    """The instant in UTC, or an error (a string naming the field)."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        return f"event_time: must be RFC 3339 with an offset, got {_describe(value)}"
    year, month, day, hour, minute, second, fraction, offset_hours, offset_minutes = match.groups()
    if second == "60":
        return f"event_time: leap seconds are not supported, got {_describe(value)}"
    # Truncate to microseconds: rounding could move an event into the next second, hour or day.
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, UTC)
    except ValueError:
        return f"event_time: not a valid date and time, got {_describe(value)}"
    if offset_hours is None:
        return moment
    key = offset_hours + offset_minutes
    offset = _OFFSETS.get(key)
    if offset is None:
        hours, minutes = int(offset_hours[1:]), int(offset_minutes)
        if hours > 23 or minutes > 59:
            return f"event_time: offset must be between -23:59 and +23:59, got {_describe(value)}"
        offset = timedelta(hours=hours, minutes=minutes)
        if offset_hours[0] == "-":
            offset = -offset
        _OFFSETS[key] = offset
    try:
        return moment - offset
    except OverflowError:
        return f"event_time: out of range in UTC, got {_describe(value)}"


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- fields ------------------------------------------------------------------------------------


def _required(event: dict[str, Any], field: str) -> str:
    return f"{field}: required" if field not in event else f"{field}: required, got null"


def _wrong(event: dict[str, Any], field: str, value: Any, rule: str) -> str:
    if value is None:
        return _required(event, field)
    return f"{field}: {rule}, got {_describe(value)}"


def _is_valid_id(value: Any) -> bool:
    return (
        isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and (value.isascii() or _is_unicode(value))
    )


def _is_unicode(text: str) -> bool:
    """False when the text holds lone surrogates, which UTF-8 (and so Parquet) cannot store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(
    errors: list[str],
    source: dict[str, Any],
    field: str,
    value: Any,
    required: bool,
    min_length: int,
    max_length: int,
) -> str | None:
    """A string field: the value, or None (absent, or an error was recorded)."""
    if value is None:
        if required:
            errors.append(_required(source, field))
        return None
    if not isinstance(value, str):
        errors.append(f"{field}: must be a string, got {_describe(value)}")
        return None
    length = len(value)
    if length < min_length or length > max_length:
        if min_length:
            errors.append(f"{field}: must be {min_length} to {max_length} characters long, got {length}")
        else:
            errors.append(f"{field}: must be at most {max_length} characters long, got {length}")
        return None
    if not value.isascii() and not _is_unicode(value):
        errors.append(f"{field}: must be valid Unicode text, got a lone surrogate")
        return None
    return value


def _identifier(
    errors: list[str], source: dict[str, Any], field: str, value: Any, required: bool
) -> str | None:
    return _text(errors, source, field, value, required, 1, MAX_ID_LENGTH)


def _integer(errors: list[str], source: dict[str, Any], field: str, value: Any, required: bool) -> int | None:
    """A non-negative int64; integral floats and decimals (``5.0``) count as integers."""
    kind = type(value)
    if kind is int:
        number = value
    elif value is None:
        if required:
            errors.append(_required(source, field))
        return None
    elif kind is float and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif kind is Decimal and value.is_finite() and value == value.to_integral_value():
        # Beyond 19 digits it is out of int64 anyway, and int() of 1E+100000000 would be huge.
        number = int(value) if value.adjusted() < 19 else (MAX_INT + 1 if value > 0 else -1)
    else:
        errors.append(f"{field}: must be an integer >= 0, got {_describe(value)}")
        return None
    if number < 0:
        errors.append(f"{field}: must be an integer >= 0, got {_describe(value)}")
        return None
    if number > MAX_INT:
        errors.append(f"{field}: must be at most {MAX_INT}, got {_describe(value)}")
        return None
    return number


def _amount(errors: list[str], source: dict[str, Any]) -> Decimal | None:
    """The amount as sent, exact, as a Decimal (0 < amount <= MAX_AMOUNT, <= AMOUNT_SCALE places)."""
    value: Any = source.get("amount")
    kind = type(value)
    amount: Decimal
    if kind is Decimal:
        amount = value
    elif kind is int:
        amount = Decimal(value)
    elif kind is float:
        # str() gives the shortest text that reads back as the same float: 0.1 -> Decimal("0.1").
        amount = Decimal(str(value))
    else:
        errors.append(_wrong(source, "amount", value, "must be a number"))
        return None
    if not amount.is_finite():
        errors.append(f"amount: must be a finite number, got {_describe(value)}")
        return None
    if amount <= 0:
        errors.append(f"amount: must be > 0, got {_describe(value)}")
        return None
    if amount > MAX_AMOUNT:
        errors.append(f"amount: must be at most {MAX_AMOUNT}, got {_describe(value)}")
        return None
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -AMOUNT_SCALE:
        exact = amount.quantize(_AMOUNT_QUANTUM, context=_DECIMAL_CONTEXT)
        if exact != amount:
            errors.append(f"amount: must have at most {AMOUNT_SCALE} decimal places, got {_describe(value)}")
            return None
        amount = exact  # "1.5000000" is 1.5, stored at the column's scale
    return amount


def _currency(errors: list[str], source: dict[str, Any]) -> str | None:
    value = source.get("currency")
    if isinstance(value, str) and value.isascii() and value.upper() in CURRENCY_CODES:
        return value.upper()
    errors.append(_wrong(source, "currency", value, "must be an ISO 4217 currency code"))
    return None


# --- properties, per event name ----------------------------------------------------------------


def _app_launch(
    errors: list[str], properties: dict[str, Any], row: dict[str, Any], currency: str, rates: Rates
) -> None:
    get = properties.get
    row["entry_point"] = _identifier(errors, properties, "entry_point", get("entry_point"), True)
    success = get("success")
    if success is None:
        row["success"] = True
    elif success is True or success is False:
        row["success"] = success
    else:
        errors.append(f"success: must be true or false, got {_describe(success)}")
    row["launch_ms"] = _integer(errors, properties, "launch_ms", get("launch_ms"), False)
    for field in _APP_LAUNCH_TEXTS:
        row[field] = _text(errors, properties, field, get(field), False, 0, MAX_TEXT_LENGTH)


def _session_end(
    errors: list[str], properties: dict[str, Any], row: dict[str, Any], currency: str, rates: Rates
) -> None:
    row["duration_ms"] = _integer(errors, properties, "duration_ms", properties.get("duration_ms"), True)


def _recharge_order(
    errors: list[str], properties: dict[str, Any], row: dict[str, Any], currency: str, rates: Rates
) -> None:
    get = properties.get
    row["order_id"] = _identifier(errors, properties, "order_id", get("order_id"), True)
    amount = _amount(errors, properties)
    order_currency = _currency(errors, properties)
    row["beans"] = _integer(errors, properties, "beans", get("beans"), False)
    row["product_id"] = _identifier(errors, properties, "product_id", get("product_id"), False)
    if amount is None or order_currency is None:
        return
    row["original_amount"] = amount
    row["currency"] = order_currency
    try:
        converted = rates.convert(amount, order_currency, currency)
        if converted is not None:
            converted = converted.quantize(_AMOUNT_QUANTUM, context=_DECIMAL_CONTEXT)
    except ArithmeticError:  # a zero rate, or a result too large for decimal(38, AMOUNT_SCALE)
        errors.append(f"amount: cannot be converted from {order_currency} to {currency}, got {amount}")
        return
    if converted is None:
        errors.append(f"currency: no conversion rate from {order_currency} to {currency} configured")
        return
    row["amount"] = converted


def recharge_order_columns(properties: dict[str, Any], currency: str, rates: Rates) -> tuple[Any, ...] | None:
    """The columns a valid recharge order's properties give (order_id, amount, original_amount,
    currency, beans, product_id), by the rules of :func:`validate_events`; None when they break
    any (the bulk path then defers the event to :func:`validate_events`, which says why)."""
    errors: list[str] = []
    row: dict[str, Any] = {}
    _recharge_order(errors, properties, row, currency, rates)
    if errors:
        return None
    get = row.get
    return (
        get("order_id"),
        get("amount"),
        get("original_amount"),
        get("currency"),
        get("beans"),
        get("product_id"),
    )


def _redeem_order(
    errors: list[str], properties: dict[str, Any], row: dict[str, Any], currency: str, rates: Rates
) -> None:
    get = properties.get
    row["order_id"] = _identifier(errors, properties, "order_id", get("order_id"), True)
    row["product_id"] = _identifier(errors, properties, "product_id", get("product_id"), True)
    row["beans"] = _integer(errors, properties, "beans", get("beans"), True)


_PropertyRule = Callable[[list[str], dict[str, Any], dict[str, Any], str, Rates], None]

# Per known event name: the check filling its typed columns, and the properties those columns hold
# (the rest is kept in the `properties` JSON column).
_PROPERTY_RULES: dict[str, tuple[_PropertyRule, frozenset[str]]] = {
    name: (check, frozenset(KNOWN_PROPERTIES[name]))
    for name, check in (
        ("app_launch", _app_launch),
        ("session_end", _session_end),
        ("recharge_order", _recharge_order),
        ("redeem_order", _redeem_order),
    )
}


def _json_number(value: Any) -> Any:
    """Decimals (from ``parse_float=Decimal``) in free-form properties, as JSON numbers."""
    if isinstance(value, Decimal):
        if value.is_finite() and value.adjusted() < 19 and value == value.to_integral_value():
            return int(value)
        return float(value)  # non-finite values then fail allow_nan=False
    raise TypeError(f"{type(value).__name__} is not a JSON value")


_PROPERTIES_ENCODER = json.JSONEncoder(default=_json_number, **_PROPERTIES_ENCODER_OPTIONS)


def _properties_json(errors: list[str], extra: dict[str, Any]) -> str | None:
    """The free-form properties as stored: compact JSON with sorted keys."""
    try:
        text = _PROPERTIES_ENCODER.encode(extra)
    except ValueError:
        errors.append("properties: numbers must be finite")
        return None
    except TypeError:
        errors.append("properties: must hold only JSON values with string keys")
        return None
    except RecursionError:
        errors.append("properties: nested too deeply")
        return None
    if len(text) > MAX_PROPERTIES_LENGTH:
        errors.append(
            f"properties: must be at most {MAX_PROPERTIES_LENGTH} characters as JSON, got {len(text)}"
        )
        return None
    if not text.isascii() and not _is_unicode(text):
        errors.append("properties: must be valid Unicode text, got a lone surrogate")
        return None
    return text


# --- messages ----------------------------------------------------------------------------------


def _describe(value: Any) -> str:
    """A short JSON-like rendering of a bad value for an error message."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:40]) + "..."
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, int):
        # Very long integers cannot be printed (int max str digits) and should not be anyway.
        return str(value) if value.bit_length() <= 128 else "a very large integer"
    if isinstance(value, float | Decimal):
        text = str(value)
        return text if len(text) <= 40 else text[:40] + "..."
    return type(value).__name__
