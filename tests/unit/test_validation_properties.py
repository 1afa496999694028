"""Properties of event validation: it never raises, accepted rows are always well-typed, and
valid events are always accepted with their values intact."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minidrama.config import Rates
from minidrama.iso_codes import COUNTRY_CODES
from minidrama.schema import AMOUNT_SCALE, EVENT_COLUMNS, FUNNEL_PAGE_VIEWS, KNOWN_PROPERTIES
from minidrama.validation import MAX_AMOUNT, MAX_FUTURE, MAX_INT, validate_event, validate_events

RECEIVED_AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
RATES = Rates(
    base="USD", rates={"EUR": Decimal("1.08"), "JPY": Decimal("0.0067"), "IDR": Decimal("0.000063")}
)
CONVERTIBLE = ("USD", "EUR", "JPY", "IDR")
COLUMN_TYPES = dict(EVENT_COLUMNS)
TOP_LEVEL_FIELDS = (
    "event_id",
    "event_name",
    "event_time",
    "user_id",
    "session_id",
    "os",
    "region",
    "properties",
)
PROPERTY_NAMES = tuple(sorted({name for names in KNOWN_PROPERTIES.values() for name in names}))
KNOWN_NAMES = (*KNOWN_PROPERTIES, *FUNNEL_PAGE_VIEWS)
FIELD_NAMES = {*TOP_LEVEL_FIELDS, *PROPERTY_NAMES, "event"}

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Scalars as a JSON parser with parse_float=Decimal (or a plain one) can hand them over, plus
# the values JSON can smuggle in that Python and Parquet dislike (lone surrogates, NaN).
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.decimals(),
    st.text(max_size=20),
    st.sampled_from(["", "\ud800", "US", "usd", "2026-11-28T10:15:00Z", "app_launch", "x" * 129]),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# Objects whose keys are mostly the contract's fields, so the random values reach every rule.
properties_like = st.dictionaries(
    st.one_of(st.sampled_from(PROPERTY_NAMES), st.text(max_size=6)), json_values, max_size=6
)
event_like = st.dictionaries(
    st.sampled_from(TOP_LEVEL_FIELDS),
    st.one_of(json_values, st.sampled_from(KNOWN_NAMES), properties_like),
    max_size=len(TOP_LEVEL_FIELDS),
)


def check(event: Any) -> tuple[dict[str, Any] | None, list[str]]:
    return validate_event(event, received_at=RECEIVED_AT, currency="USD", rates=RATES)


def assert_well_typed(row: dict[str, Any]) -> None:
    """Every column present, in order, holding its logical type (or None where optional)."""
    assert list(row) == [name for name, _ in EVENT_COLUMNS]
    for column, value in row.items():
        kind = COLUMN_TYPES[column]
        if value is None:
            assert column not in {
                "event_id",
                "event_name",
                "event_time",
                "received_at",
                "user_id",
                "os",
                "region",
            }
            assert column != "properties"
            continue
        if kind == "string":
            assert type(value) is str, column
            value.encode("utf-8")  # storable as UTF-8
        elif kind == "bool":
            assert type(value) is bool, column
        elif kind == "int64":
            assert type(value) is int, column
            assert 0 <= value <= MAX_INT, column
        elif kind == "timestamp":
            assert type(value) is datetime, column
            assert value.utcoffset() == timedelta(0), column
        elif kind == "decimal":
            assert type(value) is Decimal, column
            assert value.is_finite(), column
            assert value.as_tuple().exponent >= -AMOUNT_SCALE, column  # type: ignore[operator]
            assert len(value.as_tuple().digits) - value.as_tuple().exponent <= 38, column  # type: ignore[operator]
        else:  # pragma: no cover - a new logical type needs a rule here
            raise AssertionError(f"unknown logical type {kind}")
    assert isinstance(json.loads(row["properties"]), dict)
    assert row["event_time"] <= row["received_at"] + MAX_FUTURE
    assert row["region"] in COUNTRY_CODES
    assert row["os"] == row["os"].lower()
    assert (row["success"] is not None) == (row["event_name"] == "app_launch")


def assert_outcome(row: dict[str, Any] | None, errors: list[str]) -> None:
    if row is None:
        assert errors, "a rejection carries at least one reason"
        for error in errors:
            assert isinstance(error, str)
            field, _, reason = error.partition(": ")
            assert field in FIELD_NAMES, error
            assert reason, error
    else:
        assert errors == []
        assert_well_typed(row)


@FAST
@given(json_values)
def test_any_json_value_is_accepted_or_rejected_with_reasons(item: Any) -> None:
    assert_outcome(*check(item))


@FAST
@given(event_like)
def test_any_event_shaped_object_is_accepted_or_rejected_with_reasons(event: dict[str, Any]) -> None:
    assert_outcome(*check(event))


# --- valid events ------------------------------------------------------------------------------

identifiers = st.text(min_size=1, max_size=128)
descriptions = st.text(max_size=128)
counts = st.integers(min_value=0, max_value=MAX_INT)
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(lambda m: timedelta(minutes=m))
instants = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2026, 11, 29, 12, 0),
    timezones=st.just(UTC),
)
amounts = st.decimals(min_value=Decimal("0.000001"), max_value=MAX_AMOUNT, places=AMOUNT_SCALE)
free_form = st.dictionaries(
    st.text(max_size=8).filter(lambda key: key not in PROPERTY_NAMES),
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
        ),
        max_leaves=6,
    ),
    max_size=3,
)


def rfc3339(instant: datetime, offset: timedelta, fraction_digits: int) -> str:
    local = instant.astimezone(timezone(offset))
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction_digits:
        text += "." + f"{local.microsecond:06d}{'987'}"[:fraction_digits]
    if offset == timedelta(0):
        return text + "Z"
    sign = "+" if offset > timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def expected_instant(instant: datetime, fraction_digits: int) -> datetime:
    kept = min(fraction_digits, 6)
    micro = int(f"{instant.microsecond:06d}"[:kept].ljust(6, "0")) if kept else 0
    return instant.replace(microsecond=micro)


@st.composite
def typed_properties(draw: st.DrawFn, name: str) -> dict[str, Any]:
    if name == "app_launch":
        props: dict[str, Any] = {"entry_point": draw(identifiers)}
        for key, strategy in (
            ("success", st.booleans()),
            ("launch_ms", counts),
            ("device_brand", descriptions),
            ("device_model", descriptions),
            ("tiktok_version", descriptions),
            ("gender", descriptions),
            ("age_group", descriptions),
        ):
            if draw(st.booleans()):
                props[key] = draw(strategy)
        return props
    if name == "session_end":
        return {"duration_ms": draw(counts)}
    if name == "recharge_order":
        props = {
            "order_id": draw(identifiers),
            "amount": draw(amounts),
            "currency": draw(st.sampled_from(CONVERTIBLE)),
        }
        if draw(st.booleans()):
            props["beans"] = draw(counts)
        if draw(st.booleans()):
            props["product_id"] = draw(identifiers)
        return props
    if name == "redeem_order":
        return {"order_id": draw(identifiers), "product_id": draw(identifiers), "beans": draw(counts)}
    return {}


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(
        st.one_of(st.sampled_from(KNOWN_NAMES), st.from_regex(r"[a-z][a-z0-9_]{0,63}", fullmatch=True))
    )
    instant = draw(instants)
    offset = draw(offsets)
    fraction_digits = draw(st.integers(min_value=0, max_value=9))
    region = draw(st.sampled_from(sorted(COUNTRY_CODES)))
    event: dict[str, Any] = {
        "event_id": draw(identifiers),
        "event_name": name,
        "event_time": rfc3339(instant, offset, fraction_digits),
        "user_id": draw(identifiers),
        "os": draw(st.text(min_size=1, max_size=32)),
        "region": draw(st.sampled_from([region, region.lower()])),
        "properties": {**draw(free_form), **draw(typed_properties(name))},
    }
    if name in ("app_launch", "session_end") or draw(st.booleans()):
        event["session_id"] = draw(identifiers)
    event["_expected_time"] = expected_instant(instant, fraction_digits)
    return event


@FAST
@given(valid_events())
def test_valid_events_are_accepted_and_keep_their_values(event: dict[str, Any]) -> None:
    # GIVEN a valid event (the expected UTC instant set aside)
    expected_time = event.pop("_expected_time")
    # WHEN it is validated
    row, errors = check(event)
    # THEN it is accepted, well typed, and every value sent is in the row
    assert errors == []
    assert row is not None
    assert_well_typed(row)
    assert row["event_id"] == event["event_id"]
    assert row["event_name"] == event["event_name"]
    assert row["event_time"] == expected_time
    assert row["received_at"] == RECEIVED_AT
    assert row["user_id"] == event["user_id"]
    assert row["session_id"] == event.get("session_id")
    assert row["os"] == event["os"].lower()
    assert row["region"] == event["region"].upper()
    properties = dict(event["properties"])
    typed = set(KNOWN_PROPERTIES.get(event["event_name"], ()))
    for key in typed & set(properties):
        sent = properties.pop(key)
        if key == "amount":
            assert row["original_amount"] == sent
            exact = RATES.convert(sent, event["properties"]["currency"], "USD")
            assert exact is not None
            assert abs(row["amount"] - exact) <= Decimal("0.0000005")  # half a unit of the last place
        elif key == "currency":
            assert row["currency"] == sent
        else:
            assert row[key] == sent, key
    if event["event_name"] == "app_launch":
        assert row["success"] is event["properties"].get("success", True)
    assert json.loads(row["properties"]) == properties


@FAST
@given(st.lists(st.one_of(valid_events(), event_like), max_size=8))
def test_a_batch_splits_into_accepted_and_rejected_preserving_order(items: list[Any]) -> None:
    for item in items:
        item.pop("_expected_time", None)
    result = validate_events(items, received_at=RECEIVED_AT, currency="USD", rates=RATES)
    indices = [rejection.index for rejection in result.rejected]
    assert len(result.accepted) + len(indices) == len(items)
    assert indices == sorted(set(indices))
    for rejection in result.rejected:
        assert rejection.raw is items[rejection.index]
        assert rejection.errors
        sent_id = items[rejection.index].get("event_id")
        assert rejection.event_id is None or rejection.event_id == sent_id
    accepted_items = [item for index, item in enumerate(items) if index not in set(indices)]
    assert [row["event_id"] for row in result.accepted] == [item["event_id"] for item in accepted_items]


@FAST
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=1e-6, max_value=1e12))
def test_float_amounts_are_kept_as_their_shortest_decimal_text(amount: float) -> None:
    event = {
        "event_id": "e",
        "event_name": "recharge_order",
        "event_time": "2026-11-28T10:00:00Z",
        "user_id": "u",
        "os": "ios",
        "region": "US",
        "properties": {"order_id": "o", "amount": amount, "currency": "USD"},
    }
    row, errors = check(event)
    text = repr(amount)
    places = -Decimal(text).as_tuple().exponent  # type: ignore[operator]
    if places > AMOUNT_SCALE and Decimal(text) != Decimal(text).quantize(Decimal(1).scaleb(-AMOUNT_SCALE)):
        assert row is None
        assert errors[0].startswith("amount: ")
    else:
        assert row is not None, errors
        assert row["original_amount"] == Decimal(text)
        assert math.isclose(float(row["original_amount"]), amount)
