"""The event rules of SPEC section 4: each rule rejects what it should, naming the field, and
accepts its boundary values; accepted events come out as normalised rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from minidrama.config import Rates
from minidrama.iso_codes import COUNTRY_CODES, CURRENCY_CODES
from minidrama.schema import AMOUNT_SCALE, EVENT_COLUMNS
from minidrama.validation import (
    MAX_AMOUNT,
    MAX_INT,
    MAX_PROPERTIES_LENGTH,
    Rejection,
    validate_event,
    validate_events,
)

RECEIVED_AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
RATES = Rates(base="USD", rates={"EUR": Decimal("1.08"), "JPY": Decimal("0.0067")})
COLUMNS = [name for name, _ in EVENT_COLUMNS]
ABSENT = object()  # marks a field to leave out of the event

VALID_PROPERTIES: dict[str, dict[str, Any]] = {
    "app_launch": {"entry_point": "feed"},
    "session_end": {"duration_ms": 1000},
    "recharge_order": {"order_id": "o-1", "amount": Decimal("9.99"), "currency": "USD"},
    "redeem_order": {"order_id": "r-1", "product_id": "ep-12", "beans": 30},
    "entrance_exposure": {},
    "minis_visit": {},
    "my_custom_event": {},
}


def make_event(name: str = "app_launch", props: dict[str, Any] | None = None, **fields: Any) -> dict:
    """A valid event of that name; ``props`` override its properties, ``fields`` its top-level
    fields (including ``properties`` as a whole); ABSENT leaves a key out."""
    properties = {**VALID_PROPERTIES.get(name, {}), **(props or {})}
    event: dict[str, Any] = {
        "event_id": "evt-1",
        "event_name": name,
        "event_time": "2026-11-28T10:15:00.123Z",
        "user_id": "user-1",
        "session_id": "sess-1",
        "os": "ios",
        "region": "US",
        "properties": {k: v for k, v in properties.items() if v is not ABSENT},
        **fields,
    }
    return {k: v for k, v in event.items() if v is not ABSENT}


def check(event: Any, currency: str = "USD", rates: Rates = RATES) -> tuple[dict | None, list[str]]:
    return validate_event(event, received_at=RECEIVED_AT, currency=currency, rates=rates)


def accepted(event: Any, currency: str = "USD", rates: Rates = RATES) -> dict[str, Any]:
    row, errors = check(event, currency, rates)
    assert errors == []
    assert row is not None
    return row


def rejected(event: Any, currency: str = "USD", rates: Rates = RATES) -> list[str]:
    row, errors = check(event, currency, rates)
    assert row is None
    assert errors
    return errors


# --- every rule rejects, naming the field -------------------------------------------------------

TOP_LEVEL_REJECTIONS = [
    # event_id
    pytest.param({"event_id": ABSENT}, "event_id", id="event_id missing"),
    pytest.param({"event_id": None}, "event_id", id="event_id null"),
    pytest.param({"event_id": ""}, "event_id", id="event_id empty"),
    pytest.param({"event_id": "e" * 129}, "event_id", id="event_id 129 chars"),
    pytest.param({"event_id": 42}, "event_id", id="event_id number"),
    pytest.param({"event_id": True}, "event_id", id="event_id bool"),
    pytest.param({"event_id": ["e"]}, "event_id", id="event_id array"),
    pytest.param({"event_id": "e\ud800"}, "event_id", id="event_id lone surrogate"),
    # event_name
    pytest.param({"event_name": ABSENT}, "event_name", id="event_name missing"),
    pytest.param({"event_name": None}, "event_name", id="event_name null"),
    pytest.param({"event_name": ""}, "event_name", id="event_name empty"),
    pytest.param({"event_name": "AppLaunch"}, "event_name", id="event_name upper case"),
    pytest.param({"event_name": "1launch"}, "event_name", id="event_name starts with digit"),
    pytest.param({"event_name": "_launch"}, "event_name", id="event_name starts with underscore"),
    pytest.param({"event_name": "app-launch"}, "event_name", id="event_name dash"),
    pytest.param({"event_name": "app launch"}, "event_name", id="event_name space"),
    pytest.param({"event_name": "app_launch\n"}, "event_name", id="event_name trailing newline"),
    pytest.param({"event_name": "a" * 65}, "event_name", id="event_name 65 chars"),
    pytest.param({"event_name": "caf\u00e9"}, "event_name", id="event_name non-ASCII letter"),
    pytest.param({"event_name": "\uff41pp"}, "event_name", id="event_name full-width letter"),
    pytest.param({"event_name": 7}, "event_name", id="event_name number"),
    # event_time
    pytest.param({"event_time": ABSENT}, "event_time", id="event_time missing"),
    pytest.param({"event_time": None}, "event_time", id="event_time null"),
    pytest.param({"event_time": 1764324900}, "event_time", id="event_time epoch number"),
    pytest.param({"event_time": ""}, "event_time", id="event_time empty"),
    pytest.param({"event_time": "2026-11-28"}, "event_time", id="event_time date only"),
    pytest.param({"event_time": "2026-11-28T10:15:00"}, "event_time", id="event_time naive"),
    pytest.param({"event_time": "2026-11-28T10:15:00.123"}, "event_time", id="event_time naive fraction"),
    pytest.param({"event_time": "2026-11-28 10:00"}, "event_time", id="event_time space no seconds"),
    pytest.param({"event_time": "2026-11-28 10:15:00Z"}, "event_time", id="event_time space separator"),
    pytest.param({"event_time": "2026-11-28T10:15Z"}, "event_time", id="event_time no seconds"),
    pytest.param({"event_time": "2026-11-28T10:15:00+0530"}, "event_time", id="event_time offset no colon"),
    pytest.param({"event_time": "2026-11-28T10:15:00+05"}, "event_time", id="event_time offset hours only"),
    pytest.param({"event_time": "2026-11-28T10:15:00.Z"}, "event_time", id="event_time empty fraction"),
    pytest.param({"event_time": "2026-11-28T10:15:00,5Z"}, "event_time", id="event_time comma fraction"),
    pytest.param({"event_time": "20261128T101500Z"}, "event_time", id="event_time basic format"),
    pytest.param({"event_time": "2026-11-28T10:15:00 Z"}, "event_time", id="event_time space before Z"),
    pytest.param({"event_time": " 2026-11-28T10:15:00Z"}, "event_time", id="event_time leading space"),
    pytest.param({"event_time": "2026-11-28T10:15:00Z\n"}, "event_time", id="event_time trailing newline"),
    pytest.param({"event_time": "2026-11-28T10:15:00UTC"}, "event_time", id="event_time UTC word"),
    pytest.param(
        {"event_time": "\u0662\u0660\u0662\u0666-11-28T10:15:00Z"},
        "event_time",
        id="event_time arabic digits",
    ),
    pytest.param({"event_time": "2026-02-29T10:15:00Z"}, "event_time", id="event_time 29 Feb non-leap year"),
    pytest.param({"event_time": "2026-13-01T10:15:00Z"}, "event_time", id="event_time month 13"),
    pytest.param({"event_time": "2026-11-00T10:15:00Z"}, "event_time", id="event_time day 0"),
    pytest.param({"event_time": "2026-11-28T24:00:00Z"}, "event_time", id="event_time hour 24"),
    pytest.param({"event_time": "2026-11-28T10:60:00Z"}, "event_time", id="event_time minute 60"),
    pytest.param({"event_time": "2026-11-28T10:15:60Z"}, "event_time", id="event_time leap second"),
    pytest.param({"event_time": "2026-11-28T10:15:00+24:00"}, "event_time", id="event_time offset hour 24"),
    pytest.param({"event_time": "2026-11-28T10:15:00+05:60"}, "event_time", id="event_time offset minute 60"),
    pytest.param(
        {"event_time": "0001-01-01T00:00:00+00:01"}, "event_time", id="event_time before year 1 in UTC"
    ),
    pytest.param(
        {"event_time": "9999-12-31T23:59:59-00:01"}, "event_time", id="event_time after 9999 in UTC"
    ),
    pytest.param(
        {"event_time": "2026-11-29T12:00:00.000001Z"}, "event_time", id="event_time 24h + 1us ahead"
    ),
    pytest.param(
        {"event_time": "2026-11-29T13:00:00+01:00:00"}, "event_time", id="event_time offset seconds"
    ),
    pytest.param({"event_time": "2027-01-01T00:00:00Z"}, "event_time", id="event_time weeks ahead"),
    # user_id
    pytest.param({"user_id": ABSENT}, "user_id", id="user_id missing"),
    pytest.param({"user_id": None}, "user_id", id="user_id null"),
    pytest.param({"user_id": ""}, "user_id", id="user_id empty"),
    pytest.param({"user_id": "u" * 129}, "user_id", id="user_id 129 chars"),
    pytest.param({"user_id": 12345}, "user_id", id="user_id number"),
    pytest.param({"user_id": {"id": "u"}}, "user_id", id="user_id object"),
    # session_id (app_launch requires it; the other required case is below)
    pytest.param({"session_id": ABSENT}, "session_id", id="session_id missing on app_launch"),
    pytest.param({"session_id": None}, "session_id", id="session_id null on app_launch"),
    pytest.param({"session_id": ""}, "session_id", id="session_id empty"),
    pytest.param({"session_id": "s" * 129}, "session_id", id="session_id 129 chars"),
    pytest.param({"session_id": 99}, "session_id", id="session_id number"),
    # os
    pytest.param({"os": ABSENT}, "os", id="os missing"),
    pytest.param({"os": None}, "os", id="os null"),
    pytest.param({"os": ""}, "os", id="os empty"),
    pytest.param({"os": "o" * 33}, "os", id="os 33 chars"),
    pytest.param({"os": 1}, "os", id="os number"),
    # region
    pytest.param({"region": ABSENT}, "region", id="region missing"),
    pytest.param({"region": None}, "region", id="region null"),
    pytest.param({"region": ""}, "region", id="region empty"),
    pytest.param({"region": "XX"}, "region", id="region unassigned"),
    pytest.param({"region": "XK"}, "region", id="region user-assigned Kosovo"),
    pytest.param({"region": "EU"}, "region", id="region reserved EU"),
    pytest.param({"region": "UK"}, "region", id="region reserved UK"),
    pytest.param({"region": "USA"}, "region", id="region alpha-3"),
    pytest.param({"region": "U"}, "region", id="region one letter"),
    pytest.param({"region": " US"}, "region", id="region padded"),
    pytest.param({"region": "u\u017f"}, "region", id="region long s upper-cases to S"),
    pytest.param({"region": 840}, "region", id="region numeric code"),
    # properties
    pytest.param({"properties": []}, "properties", id="properties array"),
    pytest.param({"properties": "{}"}, "properties", id="properties JSON in a string"),
    pytest.param({"properties": 1}, "properties", id="properties number"),
    pytest.param({"properties": True}, "properties", id="properties bool"),
]


@pytest.mark.parametrize(("fields", "field"), TOP_LEVEL_REJECTIONS)
def test_a_broken_top_level_rule_rejects_the_event_naming_the_field(fields: dict, field: str) -> None:
    # GIVEN an otherwise valid app_launch with one field broken
    event = make_event("app_launch", **fields)
    # WHEN it is validated
    errors = rejected(event)
    # THEN the only error names that field
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{field}: "), errors


PROPERTY_REJECTIONS = [
    # app_launch
    pytest.param("app_launch", {"entry_point": ABSENT}, "entry_point", id="entry_point missing"),
    pytest.param("app_launch", {"entry_point": None}, "entry_point", id="entry_point null"),
    pytest.param("app_launch", {"entry_point": ""}, "entry_point", id="entry_point empty"),
    pytest.param("app_launch", {"entry_point": "x" * 129}, "entry_point", id="entry_point 129 chars"),
    pytest.param("app_launch", {"entry_point": 3}, "entry_point", id="entry_point number"),
    pytest.param("app_launch", {"success": "true"}, "success", id="success string"),
    pytest.param("app_launch", {"success": 1}, "success", id="success 1"),
    pytest.param("app_launch", {"success": 0}, "success", id="success 0"),
    pytest.param("app_launch", {"launch_ms": -1}, "launch_ms", id="launch_ms -1"),
    pytest.param("app_launch", {"launch_ms": 1.5}, "launch_ms", id="launch_ms fraction"),
    pytest.param("app_launch", {"launch_ms": Decimal("1.5")}, "launch_ms", id="launch_ms decimal fraction"),
    pytest.param("app_launch", {"launch_ms": "100"}, "launch_ms", id="launch_ms string"),
    pytest.param("app_launch", {"launch_ms": True}, "launch_ms", id="launch_ms bool"),
    pytest.param("app_launch", {"launch_ms": 2**63}, "launch_ms", id="launch_ms beyond int64"),
    pytest.param("app_launch", {"launch_ms": float("nan")}, "launch_ms", id="launch_ms NaN"),
    pytest.param("app_launch", {"launch_ms": float("inf")}, "launch_ms", id="launch_ms infinity"),
    pytest.param("app_launch", {"launch_ms": Decimal("1E+30")}, "launch_ms", id="launch_ms 1E+30"),
    pytest.param("app_launch", {"launch_ms": Decimal("-1E+30")}, "launch_ms", id="launch_ms -1E+30"),
    pytest.param(
        "app_launch", {"launch_ms": Decimal("1E+100000000")}, "launch_ms", id="launch_ms huge exponent"
    ),
    pytest.param("app_launch", {"launch_ms": [100]}, "launch_ms", id="launch_ms array"),
    pytest.param("app_launch", {"device_brand": "b" * 129}, "device_brand", id="device_brand 129 chars"),
    pytest.param("app_launch", {"device_model": 15}, "device_model", id="device_model number"),
    pytest.param("app_launch", {"tiktok_version": 37.1}, "tiktok_version", id="tiktok_version number"),
    pytest.param("app_launch", {"gender": False}, "gender", id="gender bool"),
    pytest.param("app_launch", {"age_group": ["18-24"]}, "age_group", id="age_group array"),
    # session_end
    pytest.param("session_end", {"duration_ms": ABSENT}, "duration_ms", id="duration_ms missing"),
    pytest.param("session_end", {"duration_ms": None}, "duration_ms", id="duration_ms null"),
    pytest.param("session_end", {"duration_ms": -1}, "duration_ms", id="duration_ms -1"),
    pytest.param("session_end", {"duration_ms": 0.5}, "duration_ms", id="duration_ms fraction"),
    pytest.param("session_end", {"duration_ms": "1000"}, "duration_ms", id="duration_ms string"),
    pytest.param("session_end", {"duration_ms": False}, "duration_ms", id="duration_ms bool"),
    # recharge_order
    pytest.param("recharge_order", {"order_id": ABSENT}, "order_id", id="recharge order_id missing"),
    pytest.param("recharge_order", {"order_id": ""}, "order_id", id="recharge order_id empty"),
    pytest.param("recharge_order", {"order_id": "o" * 129}, "order_id", id="recharge order_id 129 chars"),
    pytest.param("recharge_order", {"order_id": 1001}, "order_id", id="recharge order_id number"),
    pytest.param("recharge_order", {"amount": ABSENT}, "amount", id="amount missing"),
    pytest.param("recharge_order", {"amount": None}, "amount", id="amount null"),
    pytest.param("recharge_order", {"amount": 0}, "amount", id="amount 0"),
    pytest.param("recharge_order", {"amount": Decimal("0.000")}, "amount", id="amount 0.000"),
    pytest.param("recharge_order", {"amount": Decimal("-0.0")}, "amount", id="amount -0.0"),
    pytest.param("recharge_order", {"amount": -1}, "amount", id="amount -1"),
    pytest.param("recharge_order", {"amount": Decimal("-9.99")}, "amount", id="amount negative decimal"),
    pytest.param("recharge_order", {"amount": "9.99"}, "amount", id="amount string"),
    pytest.param("recharge_order", {"amount": True}, "amount", id="amount bool"),
    pytest.param("recharge_order", {"amount": float("nan")}, "amount", id="amount NaN float"),
    pytest.param("recharge_order", {"amount": float("inf")}, "amount", id="amount infinity float"),
    pytest.param("recharge_order", {"amount": Decimal("NaN")}, "amount", id="amount NaN decimal"),
    pytest.param("recharge_order", {"amount": Decimal("Infinity")}, "amount", id="amount infinity decimal"),
    pytest.param(
        "recharge_order", {"amount": MAX_AMOUNT + Decimal("0.000001")}, "amount", id="amount over max"
    ),
    pytest.param("recharge_order", {"amount": 10**40}, "amount", id="amount huge int"),
    pytest.param("recharge_order", {"amount": Decimal("0.0000001")}, "amount", id="amount 7 places"),
    pytest.param("recharge_order", {"amount": 1e-7}, "amount", id="amount 7 places float"),
    pytest.param("recharge_order", {"amount": {"value": 1}}, "amount", id="amount object"),
    pytest.param("recharge_order", {"currency": ABSENT}, "currency", id="currency missing"),
    pytest.param("recharge_order", {"currency": None}, "currency", id="currency null"),
    pytest.param("recharge_order", {"currency": ""}, "currency", id="currency empty"),
    pytest.param("recharge_order", {"currency": "US"}, "currency", id="currency 2 letters"),
    pytest.param("recharge_order", {"currency": "USDT"}, "currency", id="currency 4 letters"),
    pytest.param("recharge_order", {"currency": "ABC"}, "currency", id="currency not ISO 4217"),
    pytest.param("recharge_order", {"currency": "HRK"}, "currency", id="currency withdrawn"),
    pytest.param("recharge_order", {"currency": "u\u017fd"}, "currency", id="currency long s"),
    pytest.param("recharge_order", {"currency": 840}, "currency", id="currency numeric code"),
    pytest.param("recharge_order", {"currency": "GBP"}, "currency", id="currency without a rate"),
    pytest.param("recharge_order", {"beans": -1}, "beans", id="recharge beans -1"),
    pytest.param("recharge_order", {"beans": 2.5}, "beans", id="recharge beans fraction"),
    pytest.param("recharge_order", {"beans": True}, "beans", id="recharge beans bool"),
    pytest.param("recharge_order", {"product_id": ""}, "product_id", id="recharge product_id empty"),
    pytest.param("recharge_order", {"product_id": "p" * 129}, "product_id", id="recharge product_id 129"),
    pytest.param("recharge_order", {"product_id": 5}, "product_id", id="recharge product_id number"),
    # redeem_order
    pytest.param("redeem_order", {"order_id": ABSENT}, "order_id", id="redeem order_id missing"),
    pytest.param("redeem_order", {"order_id": None}, "order_id", id="redeem order_id null"),
    pytest.param("redeem_order", {"order_id": "o" * 129}, "order_id", id="redeem order_id 129 chars"),
    pytest.param("redeem_order", {"product_id": ABSENT}, "product_id", id="redeem product_id missing"),
    pytest.param("redeem_order", {"product_id": ""}, "product_id", id="redeem product_id empty"),
    pytest.param("redeem_order", {"product_id": 12}, "product_id", id="redeem product_id number"),
    pytest.param("redeem_order", {"beans": ABSENT}, "beans", id="redeem beans missing"),
    pytest.param("redeem_order", {"beans": None}, "beans", id="redeem beans null"),
    pytest.param("redeem_order", {"beans": -1}, "beans", id="redeem beans -1"),
    pytest.param("redeem_order", {"beans": 1.5}, "beans", id="redeem beans fraction"),
    pytest.param("redeem_order", {"beans": "30"}, "beans", id="redeem beans string"),
    # free-form properties
    pytest.param("minis_visit", {"score": float("nan")}, "properties", id="properties NaN"),
    pytest.param("minis_visit", {"score": [float("inf")]}, "properties", id="properties nested infinity"),
    pytest.param("minis_visit", {"score": Decimal("NaN")}, "properties", id="properties NaN decimal"),
    pytest.param("minis_visit", {"title": "bad \ud800"}, "properties", id="properties lone surrogate"),
    pytest.param("minis_visit", {"\udfff": 1}, "properties", id="properties lone surrogate key"),
    pytest.param("minis_visit", {"tags": {1, 2}}, "properties", id="properties not JSON"),
    pytest.param(
        "my_custom_event", {"blob": "x" * MAX_PROPERTIES_LENGTH}, "properties", id="properties too long"
    ),
]


@pytest.mark.parametrize(("name", "properties", "field"), PROPERTY_REJECTIONS)
def test_a_broken_property_rule_rejects_the_event_naming_the_field(
    name: str, properties: dict, field: str
) -> None:
    # GIVEN an otherwise valid event of that name with one property broken
    event = make_event(name, properties)
    # WHEN it is validated
    errors = rejected(event)
    # THEN the only error names that property
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{field}: "), errors


@pytest.mark.parametrize("name", ["session_end"])
def test_session_id_is_required_for_session_end(name: str) -> None:
    errors = rejected(make_event(name, session_id=ABSENT))
    assert errors == ["session_id: required"]


@pytest.mark.parametrize(
    "item",
    [
        pytest.param([], id="array"),
        pytest.param("event", id="string"),
        pytest.param(42, id="number"),
        pytest.param(None, id="null"),
        pytest.param(True, id="bool"),
    ],
)
def test_an_item_that_is_not_an_object_is_rejected(item: Any) -> None:
    errors = rejected(item)
    assert len(errors) == 1
    assert errors[0].startswith("event: must be a JSON object, got ")


# --- exact messages that users and other components rely on -------------------------------------


@pytest.mark.parametrize(
    ("event", "currency", "message"),
    [
        pytest.param(
            make_event(event_time="2026-11-28 10:00"),
            "USD",
            "event_time: must be RFC 3339 with an offset, got '2026-11-28 10:00'",
            id="event_time format",
        ),
        pytest.param(
            make_event("recharge_order", {"currency": "EUR"}),
            "SGD",
            "currency: no conversion rate from EUR to SGD configured",
            id="no rate to reporting currency",
        ),
        pytest.param(
            make_event("recharge_order", {"currency": "gbp"}),
            "USD",
            "currency: no conversion rate from GBP to USD configured",
            id="no rate from sent currency",
        ),
        pytest.param(make_event(event_id=ABSENT), "USD", "event_id: required", id="missing"),
        pytest.param(make_event(event_id=None), "USD", "event_id: required, got null", id="null"),
        pytest.param(make_event(user_id=42), "USD", "user_id: must be a string, got 42", id="wrong type"),
        pytest.param(
            make_event(user_id="u" * 129),
            "USD",
            "user_id: must be 1 to 128 characters long, got 129",
            id="too long",
        ),
        pytest.param(
            make_event("session_end", {"duration_ms": -1}),
            "USD",
            "duration_ms: must be an integer >= 0, got -1",
            id="negative integer",
        ),
        pytest.param(
            make_event(event_time="2026-11-29T12:00:00.000001Z"),
            "USD",
            "event_time: must not be more than 24 h after receipt (2026-11-28T12:00:00Z), "
            "got '2026-11-29T12:00:00.000001Z'",
            id="too far ahead",
        ),
    ],
)
def test_error_messages_name_the_field_the_rule_and_the_value(
    event: dict, currency: str, message: str
) -> None:
    assert rejected(event, currency) == [message]


def test_a_long_bad_value_is_shortened_in_the_message() -> None:
    errors = rejected(make_event(event_name="A" * 10_000))
    assert len(errors[0]) < 150
    assert errors[0].startswith("event_name: must match ^[a-z][a-z0-9_]{0,63}$, got 'AAAA")


def test_every_broken_rule_of_an_event_is_reported() -> None:
    # GIVEN a recharge with four broken fields
    event = make_event(
        "recharge_order",
        {"amount": -5, "currency": "XYZ"},
        event_time="yesterday",
        region="ZZ",
    )
    # WHEN it is validated
    errors = rejected(event)
    # THEN every rule it broke is listed, in field order
    assert [error.split(":")[0] for error in errors] == ["event_time", "region", "amount", "currency"]


# --- boundary values are accepted ----------------------------------------------------------------

TOP_LEVEL_ACCEPTED = [
    pytest.param({"event_id": "e"}, id="event_id 1 char"),
    pytest.param({"event_id": "e" * 128}, id="event_id 128 chars"),
    pytest.param({"event_id": "\u00e9" * 128}, id="event_id 128 non-ASCII chars"),
    pytest.param({"event_id": "\U0001f3ac" * 128}, id="event_id 128 astral chars"),
    pytest.param({"event_name": "a"}, id="event_name 1 char"),
    pytest.param({"event_name": "a" * 64}, id="event_name 64 chars"),
    pytest.param({"event_name": "a_9_"}, id="event_name digits and underscores"),
    pytest.param({"event_time": "2026-11-29T12:00:00Z"}, id="event_time exactly 24 h ahead"),
    pytest.param({"event_time": "2026-11-29T13:00:00+01:00"}, id="event_time exactly 24 h ahead with offset"),
    pytest.param({"event_time": "2026-11-29T11:59:59.999999Z"}, id="event_time just under 24 h ahead"),
    pytest.param({"event_time": "2026-11-28t10:15:00z"}, id="event_time lower-case t and z"),
    pytest.param({"event_time": "2026-11-28T10:15:00.1Z"}, id="event_time 1 fraction digit"),
    pytest.param({"event_time": "2026-11-28T10:15:00.123456789123Z"}, id="event_time 12 fraction digits"),
    pytest.param({"event_time": "2026-11-28T10:15:00-00:00"}, id="event_time unknown local offset"),
    pytest.param({"event_time": "2026-11-28T10:15:00+23:59"}, id="event_time offset +23:59"),
    pytest.param({"event_time": "2026-11-28T10:15:00-23:59"}, id="event_time offset -23:59"),
    pytest.param({"event_time": "2024-02-29T10:15:00Z"}, id="event_time 29 Feb leap year"),
    pytest.param({"event_time": "1970-01-01T00:00:00Z"}, id="event_time long ago"),
    pytest.param({"user_id": "u"}, id="user_id 1 char"),
    pytest.param({"user_id": "u" * 128}, id="user_id 128 chars"),
    pytest.param({"session_id": "s" * 128}, id="session_id 128 chars"),
    pytest.param({"os": "o"}, id="os 1 char"),
    pytest.param({"os": "o" * 32}, id="os 32 chars"),
    pytest.param({"region": "us"}, id="region lower case"),
    pytest.param({"region": "gB"}, id="region mixed case"),
    pytest.param({"region": "SS"}, id="region South Sudan"),
    pytest.param({"region": "AX"}, id="region Aland"),
    pytest.param({"properties": None}, id="properties null"),
    pytest.param({"properties": ABSENT}, id="properties missing"),
    pytest.param({"sdk_version": "1.2.3", "debug": True}, id="unknown top-level keys ignored"),
]


@pytest.mark.parametrize("fields", TOP_LEVEL_ACCEPTED)
def test_boundary_values_of_top_level_fields_are_accepted(fields: dict) -> None:
    # GIVEN a valid funnel event (no required properties) with one field at a boundary
    event = make_event("entrance_click", **fields)
    # WHEN it is validated
    row = accepted(event)
    # THEN it is accepted and the free-form properties default to an empty object
    assert row["properties"] == "{}"


PROPERTY_ACCEPTED = [
    pytest.param("app_launch", {"entry_point": "x" * 128}, "entry_point", "x" * 128, id="entry_point 128"),
    pytest.param("app_launch", {"success": False}, "success", False, id="success false"),
    pytest.param("app_launch", {"success": True}, "success", True, id="success true"),
    pytest.param("app_launch", {}, "success", True, id="success defaults to true"),
    pytest.param("app_launch", {"success": None}, "success", True, id="success null defaults to true"),
    pytest.param("app_launch", {"launch_ms": 0}, "launch_ms", 0, id="launch_ms 0"),
    pytest.param("app_launch", {"launch_ms": MAX_INT}, "launch_ms", MAX_INT, id="launch_ms int64 max"),
    pytest.param("app_launch", {"launch_ms": 5.0}, "launch_ms", 5, id="launch_ms integral float"),
    pytest.param(
        "app_launch", {"launch_ms": Decimal("5.0")}, "launch_ms", 5, id="launch_ms integral decimal"
    ),
    pytest.param("app_launch", {"launch_ms": Decimal("1E+3")}, "launch_ms", 1000, id="launch_ms exponent"),
    pytest.param("app_launch", {"launch_ms": -0.0}, "launch_ms", 0, id="launch_ms minus zero"),
    pytest.param("app_launch", {"launch_ms": None}, "launch_ms", None, id="launch_ms null"),
    pytest.param("app_launch", {"device_brand": ""}, "device_brand", "", id="device_brand empty"),
    pytest.param("app_launch", {"device_model": "m" * 128}, "device_model", "m" * 128, id="device_model 128"),
    pytest.param("app_launch", {"gender": "female"}, "gender", "female", id="gender"),
    pytest.param("app_launch", {"age_group": "18-24"}, "age_group", "18-24", id="age_group"),
    pytest.param("app_launch", {"tiktok_version": "37.1.0"}, "tiktok_version", "37.1.0", id="tiktok_version"),
    pytest.param("session_end", {"duration_ms": 0}, "duration_ms", 0, id="duration_ms 0"),
    pytest.param("session_end", {"duration_ms": MAX_INT}, "duration_ms", MAX_INT, id="duration_ms int64 max"),
    pytest.param("recharge_order", {"order_id": "o" * 128}, "order_id", "o" * 128, id="order_id 128"),
    pytest.param(
        "recharge_order",
        {"amount": Decimal("0.000001")},
        "original_amount",
        Decimal("0.000001"),
        id="amount min",
    ),
    pytest.param("recharge_order", {"amount": MAX_AMOUNT}, "original_amount", MAX_AMOUNT, id="amount max"),
    pytest.param("recharge_order", {"amount": 5}, "original_amount", Decimal(5), id="amount int"),
    pytest.param("recharge_order", {"amount": 0.1}, "original_amount", Decimal("0.1"), id="amount float 0.1"),
    pytest.param(
        "recharge_order",
        {"amount": Decimal("1.50000000")},
        "original_amount",
        Decimal("1.5"),
        id="amount 0 padded",
    ),
    pytest.param("recharge_order", {"currency": "usd"}, "currency", "USD", id="currency lower case"),
    pytest.param("recharge_order", {"currency": "Eur"}, "currency", "EUR", id="currency mixed case"),
    pytest.param("recharge_order", {"beans": 0}, "beans", 0, id="recharge beans 0"),
    pytest.param("recharge_order", {"beans": None}, "beans", None, id="recharge beans null"),
    pytest.param(
        "recharge_order", {"product_id": "p" * 128}, "product_id", "p" * 128, id="recharge product 128"
    ),
    pytest.param("redeem_order", {"beans": 0}, "beans", 0, id="redeem beans 0"),
    pytest.param("redeem_order", {"product_id": "p"}, "product_id", "p", id="redeem product_id 1 char"),
    pytest.param(
        "minis_visit",
        {"blob": "x" * (MAX_PROPERTIES_LENGTH - 11)},
        "event_name",
        "minis_visit",
        id="properties at the length limit",
    ),
]


@pytest.mark.parametrize(("name", "properties", "column", "expected"), PROPERTY_ACCEPTED)
def test_boundary_values_of_properties_are_accepted_and_stored(
    name: str, properties: dict, column: str, expected: Any
) -> None:
    row = accepted(make_event(name, properties))
    assert row[column] == expected
    assert type(row[column]) is type(expected)


# --- normalisation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_time", "expected"),
    [
        ("2026-11-28T10:15:00+05:30", datetime(2026, 11, 28, 4, 45, tzinfo=UTC)),
        ("2026-11-28T10:15:00.123Z", datetime(2026, 11, 28, 10, 15, 0, 123000, tzinfo=UTC)),
        ("2026-11-28T10:15:00.1234569Z", datetime(2026, 11, 28, 10, 15, 0, 123456, tzinfo=UTC)),
        ("2026-11-28T10:15:59.9999999Z", datetime(2026, 11, 28, 10, 15, 59, 999999, tzinfo=UTC)),
        ("2026-11-28t10:15:00z", datetime(2026, 11, 28, 10, 15, tzinfo=UTC)),
        ("2026-11-28T01:00:00-03:00", datetime(2026, 11, 28, 4, 0, tzinfo=UTC)),
        ("2026-11-28T00:30:00+01:00", datetime(2026, 11, 27, 23, 30, tzinfo=UTC)),
        ("2026-11-27T23:30:00-01:00", datetime(2026, 11, 28, 0, 30, tzinfo=UTC)),
        ("2026-11-28T10:15:00-00:00", datetime(2026, 11, 28, 10, 15, tzinfo=UTC)),
        ("2026-11-28T10:15:00+00:00", datetime(2026, 11, 28, 10, 15, tzinfo=UTC)),
    ],
)
def test_event_time_is_normalised_to_utc_with_microseconds(event_time: str, expected: datetime) -> None:
    row = accepted(make_event(event_time=event_time))
    assert row["event_time"] == expected
    assert row["event_time"].utcoffset() == timedelta(0)
    assert row["event_time"].tzinfo is UTC


@pytest.mark.parametrize(
    ("sent", "stored"),
    [("iOS", "ios"), ("ANDROID", "android"), ("android", "android"), ("HarmonyOS", "harmonyos")],
)
def test_os_is_stored_lower_cased(sent: str, stored: str) -> None:
    assert accepted(make_event(os=sent))["os"] == stored


@pytest.mark.parametrize(("sent", "stored"), [("us", "US"), ("Id", "ID"), ("JP", "JP"), ("br", "BR")])
def test_region_is_stored_upper_cased(sent: str, stored: str) -> None:
    assert accepted(make_event(region=sent))["region"] == stored


@pytest.mark.parametrize("code", sorted(COUNTRY_CODES))
def test_every_assigned_country_code_is_accepted_in_any_case(code: str) -> None:
    assert accepted(make_event(region=code.lower()))["region"] == code


def test_received_at_is_stored_in_utc() -> None:
    # GIVEN a receipt time expressed in Tokyo time
    tokyo = datetime(2026, 11, 28, 21, 0, tzinfo=timezone(timedelta(hours=9)))
    # WHEN an event is validated
    row, errors = validate_event(make_event(), received_at=tokyo, currency="USD", rates=RATES)
    # THEN received_at is the same instant, in UTC
    assert errors == []
    assert row is not None
    assert row["received_at"] == RECEIVED_AT
    assert row["received_at"].tzinfo is UTC


def test_a_naive_received_at_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="received_at must be timezone-aware"):
        validate_events([make_event()], received_at=datetime(2026, 11, 28, 12), currency="USD", rates=RATES)


# --- rows ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VALID_PROPERTIES))
def test_a_row_has_exactly_the_event_columns_in_order(name: str) -> None:
    row = accepted(make_event(name))
    assert list(row) == COLUMNS


def test_an_app_launch_row() -> None:
    # GIVEN a complete app_launch
    event = make_event(
        "app_launch",
        {
            "entry_point": "search",
            "success": False,
            "launch_ms": 812,
            "device_brand": "Apple",
            "device_model": "iPhone15,2",
            "tiktok_version": "37.1.0",
            "gender": "female",
            "age_group": "18-24",
            "ab_bucket": "B",
        },
        os="iOS",
        region="us",
    )
    # WHEN it is validated
    row = accepted(event)
    # THEN every typed property has its column, the rest is kept as JSON, other columns are empty
    assert row == {
        "event_id": "evt-1",
        "event_name": "app_launch",
        "event_time": datetime(2026, 11, 28, 10, 15, 0, 123000, tzinfo=UTC),
        "received_at": RECEIVED_AT,
        "user_id": "user-1",
        "session_id": "sess-1",
        "os": "ios",
        "region": "US",
        "entry_point": "search",
        "success": False,
        "launch_ms": 812,
        "device_brand": "Apple",
        "device_model": "iPhone15,2",
        "tiktok_version": "37.1.0",
        "gender": "female",
        "age_group": "18-24",
        "duration_ms": None,
        "order_id": None,
        "amount": None,
        "original_amount": None,
        "currency": None,
        "beans": None,
        "product_id": None,
        "properties": '{"ab_bucket":"B"}',
    }


@pytest.mark.parametrize(
    ("name", "filled"),
    [
        ("session_end", {"duration_ms"}),
        ("recharge_order", {"order_id", "amount", "original_amount", "currency"}),
        ("redeem_order", {"order_id", "product_id", "beans"}),
        ("entrance_exposure", set()),
        ("my_custom_event", set()),
    ],
)
def test_columns_that_do_not_apply_to_the_event_name_are_empty(name: str, filled: set[str]) -> None:
    row = accepted(make_event(name))
    base = {"event_id", "event_name", "event_time", "received_at", "user_id", "session_id", "os", "region"}
    assert {column for column, value in row.items() if value is not None} == base | filled | {"properties"}
    assert row["success"] is None


def test_session_id_is_optional_for_other_events() -> None:
    for name in ("recharge_order", "redeem_order", "entrance_click", "my_custom_event"):
        assert accepted(make_event(name, session_id=ABSENT))["session_id"] is None
        assert accepted(make_event(name, session_id=None))["session_id"] is None


# --- properties column ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "properties", "stored"),
    [
        pytest.param("app_launch", {}, "{}", id="none left"),
        pytest.param("app_launch", {"b": 1, "a": "x"}, '{"a":"x","b":1}', id="sorted compact"),
        pytest.param("app_launch", {"launch_ms": None}, "{}", id="typed property null is not kept"),
        pytest.param("app_launch", {"amount": 5}, '{"amount":5}', id="property typed for another name"),
        pytest.param(
            "my_custom_event",
            {"entry_point": "feed", "duration_ms": 5},
            '{"duration_ms":5,"entry_point":"feed"}',
            id="custom event keeps everything",
        ),
        pytest.param(
            "last_free_episode_watch",
            {"drama_id": "d42", "episode": 7},
            '{"drama_id":"d42","episode":7}',
            id="funnel",
        ),
        pytest.param(
            "minis_visit", {"title": "\u604b\u7231"}, '{"title":"\u604b\u7231"}', id="unicode kept readable"
        ),
        pytest.param(
            "minis_visit",
            {"nested": {"z": [1, None, True], "a": {}}},
            '{"nested":{"a":{},"z":[1,null,true]}}',
            id="nested values",
        ),
        pytest.param("minis_visit", {"ratio": Decimal("1.5")}, '{"ratio":1.5}', id="decimal number"),
        pytest.param("minis_visit", {"ratio": Decimal("2.0")}, '{"ratio":2}', id="integral decimal"),
        pytest.param("minis_visit", {"ratio": 0.1}, '{"ratio":0.1}', id="float number"),
        pytest.param("minis_visit", {"big": Decimal("1E+400")}, None, id="decimal beyond double"),
        pytest.param("redeem_order", {"coupon": None}, '{"coupon":null}', id="unknown null kept"),
    ],
)
def test_properties_without_a_column_are_kept_as_json(
    name: str, properties: dict, stored: str | None
) -> None:
    row, errors = check(make_event(name, properties))
    if stored is None:
        assert row is None
        assert errors[0].startswith("properties: ")
    else:
        assert errors == []
        assert row is not None
        assert row["properties"] == stored


def test_typed_properties_are_not_repeated_in_the_properties_column() -> None:
    row = accepted(make_event("recharge_order", {"beans": 100, "product_id": "beans_100", "promo": "bf"}))
    assert json.loads(row["properties"]) == {"promo": "bf"}


# --- money ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "reporting", "expected_amount", "expected_original"),
    [
        pytest.param(Decimal("9.99"), "USD", "USD", Decimal("9.99"), Decimal("9.99"), id="same currency"),
        pytest.param(Decimal("9.99"), "EUR", "USD", Decimal("10.7892"), Decimal("9.99"), id="EUR to USD"),
        pytest.param(800, "JPY", "USD", Decimal("5.36"), Decimal(800), id="JPY to USD"),
        pytest.param(Decimal("10.80"), "USD", "EUR", Decimal("10"), Decimal("10.80"), id="USD to EUR"),
        pytest.param(1, "USD", "EUR", Decimal("0.925926"), Decimal(1), id="repeating decimal rounded"),
        pytest.param(Decimal("100"), "EUR", "JPY", Decimal("16119.402985"), Decimal(100), id="cross rate"),
        pytest.param(0.1, "USD", "USD", Decimal("0.1"), Decimal("0.1"), id="float input kept exact"),
        pytest.param(MAX_AMOUNT, "EUR", "JPY", Decimal("161194029850746.268657"), MAX_AMOUNT, id="max cross"),
    ],
)
def test_amounts_are_converted_exactly_to_the_reporting_currency(
    amount: Any, currency: str, reporting: str, expected_amount: Decimal, expected_original: Decimal
) -> None:
    # GIVEN a recharge in some currency
    event = make_event("recharge_order", {"amount": amount, "currency": currency})
    # WHEN it is validated for an app reporting in another (or the same) currency
    row = accepted(event, reporting)
    # THEN the converted amount is a Decimal at the column's scale, the original is exact
    assert isinstance(row["amount"], Decimal)
    assert row["amount"] == expected_amount
    assert row["amount"].as_tuple().exponent == -AMOUNT_SCALE
    assert isinstance(row["original_amount"], Decimal)
    assert row["original_amount"] == expected_original
    assert str(row["original_amount"]) == str(expected_original)
    assert row["currency"] == currency


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (Decimal("0.000005"), Decimal("0.000002")),  # 0.0000025 -> even neighbour below
        (Decimal("0.000015"), Decimal("0.000008")),  # 0.0000075 -> even neighbour above
        (Decimal("0.000007"), Decimal("0.000004")),  # 0.0000035 -> even neighbour above
    ],
)
def test_converted_amounts_round_half_even(amount: Decimal, expected: Decimal) -> None:
    half = Rates(base="USD", rates={"XAF": Decimal("0.5")})
    row = accepted(make_event("recharge_order", {"amount": amount, "currency": "XAF"}), "USD", half)
    assert row["amount"] == expected


def test_a_same_currency_order_needs_no_configured_rate() -> None:
    row = accepted(make_event("recharge_order", {"currency": "EUR"}), "EUR", Rates())
    assert row["amount"] == Decimal("9.99")


def test_an_unusable_rate_rejects_the_order_instead_of_failing() -> None:
    # GIVEN rates where the reporting currency is worth nothing (a configuration mistake)
    broken = Rates(base="USD", rates={"EUR": Decimal(0)})
    # WHEN a USD order is validated for an app reporting in EUR
    errors = rejected(make_event("recharge_order"), "EUR", broken)
    # THEN it is rejected with a reason, not an exception
    assert errors == ["amount: cannot be converted from USD to EUR, got 9.99"]


# --- batches -------------------------------------------------------------------------------------


def test_a_batch_is_accepted_partially_with_the_indices_of_rejected_items() -> None:
    # GIVEN a batch mixing good and bad items
    good_1 = make_event(event_id="good-1")
    bad_time = make_event(event_id="bad-1", event_time="2026-11-28")
    good_2 = make_event("recharge_order", event_id="good-2")
    not_object = "hello"
    bad_id = make_event(event_id=42, region="XX")
    long_id = make_event(event_id="x" * 129)
    batch = [good_1, bad_time, good_2, not_object, bad_id, long_id]
    # WHEN the batch is validated
    result = validate_events(batch, received_at=RECEIVED_AT, currency="USD", rates=RATES)
    # THEN the good ones are accepted in order and each bad one is reported with its index
    assert [row["event_id"] for row in result.accepted] == ["good-1", "good-2"]
    assert [rejection.index for rejection in result.rejected] == [1, 3, 4, 5]
    assert [rejection.event_id for rejection in result.rejected] == ["bad-1", None, None, None]
    assert [rejection.raw for rejection in result.rejected] == [bad_time, not_object, bad_id, long_id]
    assert result.rejected[2].errors[0].startswith("event_id: ")
    assert result.rejected[2].errors[1].startswith("region: ")
    assert all(isinstance(rejection, Rejection) for rejection in result.rejected)


def test_an_empty_batch_is_valid() -> None:
    result = validate_events([], received_at=RECEIVED_AT, currency="USD", rates=RATES)
    assert result.accepted == []
    assert result.rejected == []


def test_validate_event_and_validate_events_agree() -> None:
    batch = [make_event(), make_event(os=""), make_event("redeem_order", {"beans": -1})]
    result = validate_events(batch, received_at=RECEIVED_AT, currency="USD", rates=RATES)
    singles = [check(event) for event in batch]
    assert [row for row, _ in singles if row is not None] == result.accepted
    assert [errors for _, errors in singles if errors] == [rejection.errors for rejection in result.rejected]


def test_validation_does_not_modify_the_input() -> None:
    event = make_event("recharge_order", {"currency": "eur", "promo": "x"}, os="iOS", region="us")
    snapshot = json.dumps(event, default=str, sort_keys=True)
    accepted(event)
    assert json.dumps(event, default=str, sort_keys=True) == snapshot


# --- code lists ----------------------------------------------------------------------------------


def test_country_codes_are_the_249_assigned_alpha_2_codes() -> None:
    assert len(COUNTRY_CODES) == 249
    assert all(len(code) == 2 and code.isascii() and code.isupper() for code in COUNTRY_CODES)
    assert {"US", "GB", "ID", "SS", "SX", "CW", "BQ", "TL", "AQ"} <= COUNTRY_CODES
    assert not {"UK", "EU", "XK", "AN", "YU", "ZR"} & COUNTRY_CODES


def test_currency_codes_are_active_iso_4217_codes() -> None:
    assert all(len(code) == 3 and code.isascii() and code.isupper() for code in CURRENCY_CODES)
    assert {
        "USD",
        "EUR",
        "JPY",
        "IDR",
        "VND",
        "BRL",
        "CNY",
        "KRW",
        "XCG",
        "ZWG",
        "VES",
        "SLE",
    } <= CURRENCY_CODES
    assert not {"HRK", "DEM", "FRF", "VEF", "ZWL", "LTL"} & CURRENCY_CODES
