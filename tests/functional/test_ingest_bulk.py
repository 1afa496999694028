"""``minidrama ingest``: the bulk path (:mod:`minidrama.bulk`, column-wise) and the per-event path
(:func:`minidrama.validation.validate_events`) give exactly the same outcomes on the same file.

A differential test: the same NDJSON file goes through both paths into two fresh lakes, and the
stored rows (the Parquet files, schema included), the printed counts and the quarantine records
must be identical. The inputs hold every kind of invalid event the project knows (the case lists
of ``tests/unit/test_validation.py``, copied, plus byte-level lines: lone surrogate escapes,
duplicate keys, non-UTF-8, non-JSON, blank lines), valid events of every name, and duplicates of
event ids within and across the bulk path's chunks. Within one chunk (per-event) or one call
(bulk) the first copy of an event id stands, so the per-event path's chunk is made as large as
the input, and both paths get the same receipt time.

Each input line carries tags naming what it exercises ("event_id:missing", "valid:session_end"),
and the tests assert that the inputs hold every tag they claim to cover, so that a generator that
silently stopped producing a kind of line would fail, not pass.
"""

from __future__ import annotations

import json
import random
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import minidrama.bulk
from minidrama import ingestion
from minidrama.api import AppDirectory, handle_post_events
from minidrama.config import AppConfig, register_app
from minidrama.iso_codes import COUNTRY_CODES
from minidrama.lake import RATES_CONFIG_KEY, LocalStorage
from minidrama.schema import AMOUNT_SCALE, FUNNEL_PAGE_VIEWS, KNOWN_PROPERTIES
from minidrama.validation import MAX_AMOUNT, MAX_INT, MAX_PROPERTIES_LENGTH
from minidrama.writer import EVENTS_SCHEMA, ParquetSink, PartitionFiles, encode_table, write_events

RECEIVED_AT = datetime(2026, 11, 28, 12, 0, 0, 250_000, tzinfo=UTC)
APP_ID = "app"
# USD is the app's own currency; XAU's rate makes most conversions overflow decimal(38, 6), XAG's
# rounds them to zero; GBP has no rate.
RATES = {
    "base": "USD",
    "rates": {"EUR": "1.08", "JPY": "0.0067", "IDR": "0.000063", "XAU": "1E+33", "XAG": "1E-30"},
}
ABSENT = object()  # marks a field to leave out of the event
BIG_CHUNK = 10**9  # the per-event path's chunk: the whole input, so duplicates are handled per call

# --- writing lines byte by byte --------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """JSON text written as is (``5.0``, ``1e400``, ``NaN``)."""

    text: str


@dataclass(frozen=True)
class Pairs:
    """A JSON object written with these key/value pairs in this order (duplicate keys allowed)."""

    items: tuple[tuple[str, Any], ...]


def dump(value: Any) -> str:
    """JSON text for a value: decimals as their exact text, floats as Python writes them
    (``NaN``/``Infinity`` included: lines that are then not JSON), strings unescaped except
    where JSON must escape. Lone surrogates stay in the text (see :func:`to_line`)."""
    if isinstance(value, Raw):
        return value.text
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ",".join(dump(item) for item in value) + "]"
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{dump(key)}:{dump(item)}" for key, item in value.items) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{dump(key)}:{dump(item)}" for key, item in value.items()) + "}"
    raise TypeError(type(value).__name__)


def to_line(value: Any) -> bytes:
    """One NDJSON line (without its newline). A lone surrogate in a string becomes the escape
    ``\\ud800`` written raw, which JSON allows and UTF-8 cannot store."""
    return dump(value).encode("utf-8", "backslashreplace")


# --- the cases ---------------------------------------------------------------------------------

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


@dataclass(frozen=True)
class Case:
    """One kind of input line: ``make(event_id)`` writes it (the id is used where the case does
    not set its own)."""

    id: str
    tags: tuple[str, ...]
    make: Callable[[str], bytes]
    own_id: bool = False  # the case sets its own event_id (or none)


CASES: list[Case] = []


def register(case_id: str, tags: str, make: Callable[[str], bytes], own_id: bool) -> None:
    taken = {case.id for case in CASES}
    unique, number = case_id, 1
    while unique in taken:
        number += 1
        unique = f"{case_id} #{number}"
    CASES.append(Case(unique, tuple(tags.split()), make, own_id))


def event_case(
    tags: str,
    case_id: str,
    name: str = "app_launch",
    props: dict[str, Any] | None = None,
    *,
    before: tuple[tuple[str, Any], ...] = (),
    after: tuple[tuple[str, Any], ...] = (),
    replace: tuple[bytes, bytes] | None = None,
    suffix: bytes = b"",
    prefix: bytes = b"",
    **fields: Any,
) -> None:
    """Register an event case: ``tags`` separated by spaces; ``before``/``after`` add key/value
    pairs around the event's own (duplicate keys), ``replace`` swaps bytes in the written line."""

    def make(event_id: str) -> bytes:
        event = make_event(name, props, **{"event_id": event_id, **fields})
        line = to_line(Pairs((*before, *event.items(), *after)))
        if replace is not None:
            assert replace[0] in line, case_id
            line = line.replace(*replace)
        return prefix + line + suffix

    own_id = "event_id" in fields or any(key == "event_id" for key, _value in (*before, *after))
    register(case_id, tags, make, own_id)


def raw_case(tags: str, case_id: str, line: bytes) -> None:
    """Register a line written byte for byte (``@ID@`` becomes the event id)."""
    own_id = b"@ID@" not in line or b"@ID@\\" in line
    register(case_id, tags, lambda event_id: line.replace(b"@ID@", event_id.encode()), own_id)


# Top-level fields: every rule broken, and the boundaries accepted (tests/unit/test_validation.py).
TOP_LEVEL = [
    # event_id
    ("event_id:missing", "event_id missing", {"event_id": ABSENT}),
    ("event_id:null", "event_id null", {"event_id": None}),
    ("event_id:empty", "event_id empty", {"event_id": ""}),
    ("event_id:too-long", "event_id 129 chars", {"event_id": "e" * 129}),
    ("event_id:wrong-type", "event_id number", {"event_id": 42}),
    ("event_id:wrong-type event_id:bool", "event_id bool", {"event_id": True}),
    ("event_id:wrong-type", "event_id array", {"event_id": ["e"]}),
    ("event_id:wrong-type", "event_id object", {"event_id": {"id": "e"}}),
    ("event_id:wrong-type event_id:1e400", "event_id 1e400", {"event_id": Raw("1e400")}),
    ("event_id:surrogate", "event_id lone surrogate", {"event_id": "e\ud800"}),
    ("event_id:surrogate", "event_id lone low surrogate", {"event_id": "\udfff"}),
    ("event_id:boundary", "event_id 1 char", {"event_id": "e"}),
    ("event_id:boundary", "event_id 128 chars", {"event_id": "e" * 128}),
    ("event_id:boundary event_id:non-ascii", "event_id 128 non-ASCII", {"event_id": "\u00e9" * 128}),
    ("event_id:boundary event_id:non-ascii", "event_id 128 astral", {"event_id": "\U0001f3ac" * 128}),
    ("event_id:boundary event_id:non-ascii", "event_id 129 astral", {"event_id": "\U0001f3ac" * 129}),
    ("event_id:control", "event_id control chars", {"event_id": "e\x00\x1f\x7f\u2028\ufffe"}),
    # event_name
    ("event_name:missing", "event_name missing", {"event_name": ABSENT}),
    ("event_name:null", "event_name null", {"event_name": None}),
    ("event_name:empty", "event_name empty", {"event_name": ""}),
    ("event_name:pattern", "event_name upper case", {"event_name": "AppLaunch"}),
    ("event_name:pattern", "event_name starts with digit", {"event_name": "1launch"}),
    ("event_name:pattern", "event_name starts with underscore", {"event_name": "_launch"}),
    ("event_name:pattern", "event_name dash", {"event_name": "app-launch"}),
    ("event_name:pattern", "event_name space", {"event_name": "app launch"}),
    ("event_name:pattern", "event_name trailing newline", {"event_name": "app_launch\n"}),
    ("event_name:pattern", "event_name leading newline", {"event_name": "\nminis_visit"}),
    ("event_name:too-long", "event_name 65 chars", {"event_name": "a" * 65}),
    ("event_name:pattern event_name:non-ascii", "event_name non-ASCII letter", {"event_name": "caf\u00e9"}),
    ("event_name:pattern event_name:non-ascii", "event_name full-width", {"event_name": "\uff41pp"}),
    ("event_name:pattern", "event_name kelvin sign", {"event_name": "\u212a"}),
    ("event_name:wrong-type", "event_name number", {"event_name": 7}),
    ("event_name:wrong-type", "event_name object", {"event_name": {"name": "app_launch"}}),
    ("event_name:surrogate", "event_name lone surrogate", {"event_name": "a\ud800"}),
    # event_time
    ("event_time:missing", "event_time missing", {"event_time": ABSENT}),
    ("event_time:null", "event_time null", {"event_time": None}),
    ("event_time:wrong-type", "event_time epoch number", {"event_time": 1764324900}),
    ("event_time:wrong-type", "event_time epoch float", {"event_time": Raw("1764324900.5")}),
    ("event_time:empty", "event_time empty", {"event_time": ""}),
    ("event_time:pattern", "event_time date only", {"event_time": "2026-11-28"}),
    ("event_time:pattern", "event_time naive", {"event_time": "2026-11-28T10:15:00"}),
    ("event_time:pattern", "event_time naive fraction", {"event_time": "2026-11-28T10:15:00.123"}),
    ("event_time:pattern", "event_time space no seconds", {"event_time": "2026-11-28 10:00"}),
    ("event_time:pattern", "event_time space separator", {"event_time": "2026-11-28 10:15:00Z"}),
    ("event_time:pattern", "event_time no seconds", {"event_time": "2026-11-28T10:15Z"}),
    ("event_time:pattern", "event_time offset no colon", {"event_time": "2026-11-28T10:15:00+0530"}),
    ("event_time:pattern", "event_time offset hours only", {"event_time": "2026-11-28T10:15:00+05"}),
    ("event_time:pattern", "event_time empty fraction", {"event_time": "2026-11-28T10:15:00.Z"}),
    ("event_time:pattern", "event_time comma fraction", {"event_time": "2026-11-28T10:15:00,5Z"}),
    ("event_time:pattern", "event_time basic format", {"event_time": "20261128T101500Z"}),
    ("event_time:pattern", "event_time space before Z", {"event_time": "2026-11-28T10:15:00 Z"}),
    ("event_time:pattern", "event_time leading space", {"event_time": " 2026-11-28T10:15:00Z"}),
    ("event_time:pattern", "event_time trailing newline", {"event_time": "2026-11-28T10:15:00Z\n"}),
    ("event_time:pattern", "event_time UTC word", {"event_time": "2026-11-28T10:15:00UTC"}),
    (
        "event_time:pattern",
        "event_time arabic digits",
        {"event_time": "\u0662\u0660\u0662\u0666-11-28T10:15:00Z"},
    ),
    ("event_time:pattern", "event_time full-width digits", {"event_time": "\uff12026-11-28T10:15:00Z"}),
    ("event_time:pattern", "event_time 5-digit year", {"event_time": "12026-11-28T10:15:00Z"}),
    ("event_time:pattern", "event_time 1-digit month", {"event_time": "2026-1-28T10:15:00Z"}),
    ("event_time:feb-30", "event_time 29 Feb non-leap year", {"event_time": "2026-02-29T10:15:00Z"}),
    ("event_time:feb-30", "event_time 30 Feb", {"event_time": "2026-02-30T10:15:00Z"}),
    ("event_time:feb-30", "event_time 31 Apr", {"event_time": "2026-04-31T10:15:00+05:45"}),
    ("event_time:feb-30", "event_time 29 Feb 1900", {"event_time": "1900-02-29T00:00:00Z"}),
    ("event_time:feb-30", "event_time 29 Feb 2100", {"event_time": "2100-02-29T00:00:00Z"}),
    ("event_time:boundary", "event_time 29 Feb 2000", {"event_time": "2000-02-29T23:59:59.999999Z"}),
    ("event_time:boundary", "event_time 29 Feb leap year", {"event_time": "2024-02-29T10:15:00Z"}),
    ("event_time:pattern", "event_time month 13", {"event_time": "2026-13-01T10:15:00Z"}),
    ("event_time:pattern", "event_time month 00", {"event_time": "2026-00-01T10:15:00Z"}),
    ("event_time:feb-30", "event_time day 0", {"event_time": "2026-11-00T10:15:00Z"}),
    ("event_time:feb-30", "event_time day 32", {"event_time": "2026-11-32T10:15:00Z"}),
    ("event_time:pattern", "event_time hour 24", {"event_time": "2026-11-28T24:00:00Z"}),
    ("event_time:pattern", "event_time minute 60", {"event_time": "2026-11-28T10:60:00Z"}),
    ("event_time:leap-second", "event_time leap second", {"event_time": "2026-11-28T10:15:60Z"}),
    ("event_time:leap-second", "event_time real leap second", {"event_time": "2016-12-31T23:59:60Z"}),
    ("event_time:leap-second", "event_time second 61", {"event_time": "2016-12-31T23:59:61Z"}),
    ("event_time:offset", "event_time offset +24:00", {"event_time": "2026-11-28T10:15:00+24:00"}),
    ("event_time:offset", "event_time offset -24:00", {"event_time": "2026-11-28T10:15:00-24:00"}),
    ("event_time:offset", "event_time offset minute 60", {"event_time": "2026-11-28T10:15:00+05:60"}),
    ("event_time:offset", "event_time offset +05:45", {"event_time": "2026-11-28T10:15:00+05:45"}),
    ("event_time:offset", "event_time offset -00:00", {"event_time": "2026-11-28T10:15:00-00:00"}),
    ("event_time:offset", "event_time offset +00:00", {"event_time": "2026-11-28T10:15:00+00:00"}),
    ("event_time:offset", "event_time offset +23:59", {"event_time": "2026-11-28T10:15:00+23:59"}),
    ("event_time:offset", "event_time offset -23:59", {"event_time": "2026-11-28T10:15:00-23:59"}),
    ("event_time:offset", "event_time offset -09:30", {"event_time": "2026-11-27T23:59:59.5-09:30"}),
    ("event_time:offset", "event_time offset seconds", {"event_time": "2026-11-29T13:00:00+01:00:00"}),
    ("event_time:year-1", "event_time year 1", {"event_time": "0001-01-01T00:00:00Z"}),
    ("event_time:year-1", "event_time before year 1 in UTC", {"event_time": "0001-01-01T00:00:00+00:01"}),
    ("event_time:year-1", "event_time year 1 west", {"event_time": "0001-01-01T00:00:00-23:59"}),
    ("event_time:year-1", "event_time year 999", {"event_time": "0999-12-31T23:59:59.999999Z"}),
    ("event_time:year-1", "event_time year 1000", {"event_time": "1000-01-01T00:00:00+01:00"}),
    ("event_time:year-1", "event_time year 0", {"event_time": "0000-01-01T00:00:00Z"}),
    ("event_time:year-9999", "event_time after 9999 in UTC", {"event_time": "9999-12-31T23:59:59-00:01"}),
    ("event_time:year-9999", "event_time 9999 east", {"event_time": "9999-12-31T23:59:59+00:01"}),
    ("event_time:year-9999", "event_time 9999 Z", {"event_time": "9999-12-31T23:59:59.999999Z"}),
    ("event_time:24h", "event_time exactly 24 h ahead", {"event_time": "2026-11-29T12:00:00.25Z"}),
    ("event_time:24h", "event_time 24 h + 1us ahead", {"event_time": "2026-11-29T12:00:00.250001Z"}),
    ("event_time:24h", "event_time 24 h ahead +05:45", {"event_time": "2026-11-29T17:45:00.250000+05:45"}),
    ("event_time:24h", "event_time 24 h + 1us +05:45", {"event_time": "2026-11-29T17:45:00.250001+05:45"}),
    ("event_time:24h", "event_time 24 h ahead -00:00", {"event_time": "2026-11-29T12:00:00.25-00:00"}),
    ("event_time:24h", "event_time 24 h ahead lower z", {"event_time": "2026-11-29t12:00:00.25z"}),
    ("event_time:24h", "event_time just under 24 h", {"event_time": "2026-11-29T12:00:00.249999Z"}),
    (
        "event_time:24h event_time:7-digits",
        "event_time 24 h truncated",
        {"event_time": "2026-11-29T12:00:00.2500009Z"},
    ),
    (
        "event_time:24h event_time:7-digits",
        "event_time 24 h + 1us 7 digits",
        {"event_time": "2026-11-29T12:00:00.2500010Z"},
    ),
    ("event_time:24h", "event_time weeks ahead", {"event_time": "2027-01-01T00:00:00Z"}),
    ("event_time:lower-case", "event_time lower-case t and z", {"event_time": "2026-11-28t10:15:00z"}),
    ("event_time:lower-case", "event_time lower-case t offset", {"event_time": "2026-11-28t10:15:00+01:00"}),
    ("event_time:7-digits", "event_time 7 fraction digits", {"event_time": "2026-11-28T10:15:00.1234567Z"}),
    (
        "event_time:7-digits",
        "event_time 12 fraction digits",
        {"event_time": "2026-11-28T10:15:00.123456789123Z"},
    ),
    ("event_time:7-digits", "event_time 9s truncated", {"event_time": "2026-11-28T10:59:59.9999999+05:45"}),
    ("event_time:boundary", "event_time 1 fraction digit", {"event_time": "2026-11-28T10:15:00.1Z"}),
    ("event_time:boundary", "event_time long ago", {"event_time": "1970-01-01T00:00:00Z"}),
    ("event_time:boundary", "event_time before epoch", {"event_time": "1969-12-31T23:59:59.999999Z"}),
    ("event_time:boundary", "event_time previous day by offset", {"event_time": "2026-11-28T00:30:00+01:00"}),
    ("event_time:surrogate", "event_time lone surrogate", {"event_time": "2026-11-28T10:15:00Z\ud800"}),
    # user_id
    ("user_id:missing", "user_id missing", {"user_id": ABSENT}),
    ("user_id:null", "user_id null", {"user_id": None}),
    ("user_id:empty", "user_id empty", {"user_id": ""}),
    ("user_id:too-long", "user_id 129 chars", {"user_id": "u" * 129}),
    ("user_id:wrong-type", "user_id number", {"user_id": 12345}),
    ("user_id:wrong-type", "user_id object", {"user_id": {"id": "u"}}),
    ("user_id:wrong-type", "user_id bool", {"user_id": False}),
    ("user_id:surrogate", "user_id lone surrogate", {"user_id": "\ud800user"}),
    ("user_id:boundary", "user_id 1 char", {"user_id": "u"}),
    ("user_id:boundary", "user_id 128 chars", {"user_id": "u" * 128}),
    ("user_id:boundary", "user_id astral pair", {"user_id": "\ud83c\udfac"}),
    # session_id
    ("session_id:missing", "session_id missing on app_launch", {"session_id": ABSENT}),
    ("session_id:null", "session_id null on app_launch", {"session_id": None}),
    ("session_id:empty", "session_id empty", {"session_id": ""}),
    ("session_id:too-long", "session_id 129 chars", {"session_id": "s" * 129}),
    ("session_id:wrong-type", "session_id number", {"session_id": 99}),
    ("session_id:surrogate", "session_id lone surrogate", {"session_id": "s\udc00"}),
    ("session_id:boundary", "session_id 128 chars", {"session_id": "s" * 128}),
    # os
    ("os:missing", "os missing", {"os": ABSENT}),
    ("os:null", "os null", {"os": None}),
    ("os:empty", "os empty", {"os": ""}),
    ("os:too-long", "os 33 chars", {"os": "o" * 33}),
    ("os:wrong-type", "os number", {"os": 1}),
    ("os:non-ascii", "os non-ASCII", {"os": "\u00cfOS"}),
    ("os:non-ascii", "os dotted capital I", {"os": "\u0130OS"}),
    ("os:non-ascii", "os 32 astral", {"os": "\U0001f4f1" * 32}),
    ("os:surrogate", "os lone surrogate", {"os": "ios\ud800"}),
    ("os:boundary", "os 1 char", {"os": "o"}),
    ("os:boundary", "os 32 chars", {"os": "O" * 32}),
    ("os:boundary", "os upper case", {"os": "HarmonyOS"}),
    # region
    ("region:missing", "region missing", {"region": ABSENT}),
    ("region:null", "region null", {"region": None}),
    ("region:empty", "region empty", {"region": ""}),
    ("region:pattern", "region unassigned", {"region": "XX"}),
    ("region:user-assigned", "region user-assigned Kosovo", {"region": "XK"}),
    ("region:user-assigned", "region user-assigned lower", {"region": "xk"}),
    ("region:pattern", "region reserved EU", {"region": "EU"}),
    ("region:pattern", "region reserved UK", {"region": "UK"}),
    ("region:pattern", "region alpha-3", {"region": "USA"}),
    ("region:pattern", "region one letter", {"region": "U"}),
    ("region:pattern", "region padded", {"region": " US"}),
    ("region:non-ascii", "region long s upper-cases to S", {"region": "u\u017f"}),
    ("region:non-ascii", "region full-width", {"region": "\uff35\uff33"}),
    ("region:wrong-type", "region numeric code", {"region": 840}),
    ("region:surrogate", "region lone surrogate", {"region": "U\ud800"}),
    ("region:lower-case", "region lower case", {"region": "us"}),
    ("region:lower-case", "region mixed case", {"region": "gB"}),
    ("region:boundary", "region South Sudan", {"region": "SS"}),
    ("region:boundary", "region Aland", {"region": "ax"}),
    # properties as a whole
    ("properties:not-object", "properties array", {"properties": []}),
    ("properties:not-object", "properties JSON in a string", {"properties": "{}"}),
    ("properties:not-object", "properties number", {"properties": 1}),
    ("properties:not-object", "properties bool", {"properties": True}),
    ("properties:null", "properties null", {"properties": None}),
    ("properties:missing", "properties missing", {"properties": ABSENT}),
    ("unknown-keys", "unknown top-level keys", {"sdk_version": "1.2.3", "debug": True, "n": 1.5}),
    ("unknown-keys", "unknown top-level key holding a bad value", {"Event_Id": None, "x": Raw("1e400")}),
]
for tags, case_id, fields in TOP_LEVEL:
    # the properties of app_launch are typed; a funnel page view takes the fields alone as well
    event_case(tags, case_id, "app_launch", **fields)
    if not tags.startswith("session_id"):
        event_case(tags, case_id + " (page view)", "entrance_click", **fields)

event_case("session_id:missing", "session_id missing on session_end", "session_end", session_id=ABSENT)
event_case("session_id:missing", "session_id missing on redeem", "redeem_order", session_id=ABSENT)
event_case("session_id:null", "session_id null on custom", "my_custom_event", session_id=None)

# Typed properties: every rule broken, and the boundaries accepted.
PROPERTIES = [
    # app_launch
    ("entry_point:missing", "app_launch", {"entry_point": ABSENT}),
    ("entry_point:null", "app_launch", {"entry_point": None}),
    ("entry_point:empty", "app_launch", {"entry_point": ""}),
    ("entry_point:too-long", "app_launch", {"entry_point": "x" * 129}),
    ("entry_point:wrong-type", "app_launch", {"entry_point": 3}),
    ("entry_point:surrogate", "app_launch", {"entry_point": "\ud800"}),
    ("entry_point:boundary", "app_launch", {"entry_point": "x" * 128}),
    ("success:wrong-type", "app_launch", {"success": "true"}),
    ("success:wrong-type success:int", "app_launch", {"success": 1}),
    ("success:wrong-type success:int", "app_launch", {"success": 0}),
    ("success:wrong-type", "app_launch", {"success": Raw("1.0")}),
    ("success:null", "app_launch", {"success": None}),
    ("success:boundary", "app_launch", {"success": False}),
    ("launch_ms:negative", "app_launch", {"launch_ms": -1}),
    ("launch_ms:fraction", "app_launch", {"launch_ms": Raw("1.5")}),
    ("launch_ms:wrong-type", "app_launch", {"launch_ms": "100"}),
    ("launch_ms:bool", "app_launch", {"launch_ms": True}),
    ("launch_ms:bool", "app_launch", {"launch_ms": False}),
    ("launch_ms:int64", "app_launch", {"launch_ms": 2**63}),
    ("launch_ms:int64", "app_launch", {"launch_ms": 2**63 - 1}),
    ("launch_ms:int64", "app_launch", {"launch_ms": -(2**63)}),
    ("launch_ms:uint64", "app_launch", {"launch_ms": 2**64 - 1}),
    ("launch_ms:uint64", "app_launch", {"launch_ms": 2**64}),
    ("launch_ms:uint64", "app_launch", {"launch_ms": 2**64 + 1}),
    ("launch_ms:uint64", "app_launch", {"launch_ms": -(2**64)}),
    ("launch_ms:uint64", "app_launch", {"launch_ms": 10**30}),
    ("launch_ms:1e400", "app_launch", {"launch_ms": Raw("1e400")}),
    ("launch_ms:1e400", "app_launch", {"launch_ms": Raw("-1e400")}),
    ("launch_ms:1e400", "app_launch", {"launch_ms": Raw("1E+30")}),
    ("launch_ms:1e400", "app_launch", {"launch_ms": Raw("1e-400")}),
    ("launch_ms:integral-float", "app_launch", {"launch_ms": Raw("5.0")}),
    ("launch_ms:integral-float", "app_launch", {"launch_ms": Raw("1E3")}),
    ("launch_ms:integral-float", "app_launch", {"launch_ms": Raw("-0.0")}),
    ("launch_ms:integral-float", "app_launch", {"launch_ms": Raw("-0")}),
    ("launch_ms:integral-float", "app_launch", {"launch_ms": Raw("9223372036854775807.0")}),
    ("launch_ms:integral-float", "app_launch", {"launch_ms": Raw("9223372036854775808.0")}),
    ("launch_ms:integral-float", "app_launch", {"launch_ms": Raw("1E+19")}),
    ("launch_ms:integral-float", "app_launch", {"launch_ms": Raw("12.000000000000000000001")}),
    ("launch_ms:wrong-type", "app_launch", {"launch_ms": [100]}),
    ("launch_ms:null", "app_launch", {"launch_ms": None}),
    ("launch_ms:boundary", "app_launch", {"launch_ms": 0}),
    ("device_brand:too-long", "app_launch", {"device_brand": "b" * 129}),
    ("device_brand:boundary", "app_launch", {"device_brand": "b" * 128}),
    ("device_model:wrong-type", "app_launch", {"device_model": 15}),
    ("device_model:surrogate", "app_launch", {"device_model": "\ud800"}),
    ("tiktok_version:wrong-type", "app_launch", {"tiktok_version": Raw("37.1")}),
    ("gender:wrong-type", "app_launch", {"gender": False}),
    ("gender:empty", "app_launch", {"gender": ""}),
    ("age_group:wrong-type", "app_launch", {"age_group": ["18-24"]}),
    ("age_group:non-ascii", "app_launch", {"age_group": "\u2265 55"}),
    # session_end
    ("duration_ms:missing", "session_end", {"duration_ms": ABSENT}),
    ("duration_ms:null", "session_end", {"duration_ms": None}),
    ("duration_ms:negative", "session_end", {"duration_ms": -1}),
    ("duration_ms:fraction", "session_end", {"duration_ms": Raw("0.5")}),
    ("duration_ms:wrong-type", "session_end", {"duration_ms": "1000"}),
    ("duration_ms:bool", "session_end", {"duration_ms": False}),
    ("duration_ms:int64", "session_end", {"duration_ms": 2**63}),
    ("duration_ms:int64", "session_end", {"duration_ms": MAX_INT}),
    ("duration_ms:uint64", "session_end", {"duration_ms": 2**64}),
    ("duration_ms:uint64", "session_end", {"duration_ms": 2**64 - 1}),
    ("duration_ms:1e400", "session_end", {"duration_ms": Raw("1e400")}),
    ("duration_ms:integral-float", "session_end", {"duration_ms": Raw("1000.0")}),
    ("duration_ms:integral-float", "session_end", {"duration_ms": Raw("1e3")}),
    ("duration_ms:boundary", "session_end", {"duration_ms": 0}),
    # recharge_order
    ("order_id:missing", "recharge_order", {"order_id": ABSENT}),
    ("order_id:empty", "recharge_order", {"order_id": ""}),
    ("order_id:too-long", "recharge_order", {"order_id": "o" * 129}),
    ("order_id:wrong-type", "recharge_order", {"order_id": 1001}),
    ("order_id:boundary", "recharge_order", {"order_id": "o" * 128}),
    ("amount:missing", "recharge_order", {"amount": ABSENT}),
    ("amount:null", "recharge_order", {"amount": None}),
    ("amount:zero", "recharge_order", {"amount": 0}),
    ("amount:zero", "recharge_order", {"amount": Raw("0.000")}),
    ("amount:zero", "recharge_order", {"amount": Raw("-0.0")}),
    ("amount:zero", "recharge_order", {"amount": Raw("0E-7")}),
    ("amount:negative", "recharge_order", {"amount": -1}),
    ("amount:negative", "recharge_order", {"amount": Raw("-9.99")}),
    ("amount:wrong-type", "recharge_order", {"amount": "9.99"}),
    ("amount:bool", "recharge_order", {"amount": True}),
    ("amount:wrong-type", "recharge_order", {"amount": {"value": 1}}),
    ("amount:huge", "recharge_order", {"amount": MAX_AMOUNT + Decimal("0.000001")}),
    ("amount:huge", "recharge_order", {"amount": 10**40}),
    ("amount:huge", "recharge_order", {"amount": 2**64}),
    ("amount:1e400", "recharge_order", {"amount": Raw("1e400")}),
    ("amount:1e400", "recharge_order", {"amount": Raw("1e-400")}),
    ("amount:decimals", "recharge_order", {"amount": Raw("0.0000001")}),
    ("amount:decimals", "recharge_order", {"amount": Raw("1e-7")}),
    ("amount:decimals", "recharge_order", {"amount": Raw("1.5000001")}),
    ("amount:decimals", "recharge_order", {"amount": Raw("1.50000000")}),
    ("amount:integral-float", "recharge_order", {"amount": Raw("5.0")}),
    ("amount:boundary", "recharge_order", {"amount": Raw("0.000001")}),
    ("amount:boundary", "recharge_order", {"amount": MAX_AMOUNT}),
    ("amount:boundary", "recharge_order", {"amount": 5}),
    ("amount:boundary", "recharge_order", {"amount": 0.1}),
    ("currency:missing", "recharge_order", {"currency": ABSENT}),
    ("currency:null", "recharge_order", {"currency": None}),
    ("currency:empty", "recharge_order", {"currency": ""}),
    ("currency:pattern", "recharge_order", {"currency": "US"}),
    ("currency:pattern", "recharge_order", {"currency": "USDT"}),
    ("currency:pattern", "recharge_order", {"currency": "ABC"}),
    ("currency:pattern", "recharge_order", {"currency": "HRK"}),
    ("currency:non-ascii", "recharge_order", {"currency": "u\u017fd"}),
    ("currency:surrogate", "recharge_order", {"currency": "US\ud800"}),
    ("currency:wrong-type", "recharge_order", {"currency": 840}),
    ("currency:no-rate", "recharge_order", {"currency": "GBP"}),
    ("currency:no-rate currency:lower-case", "recharge_order", {"currency": "gbp"}),
    ("currency:lower-case", "recharge_order", {"currency": "eur"}),
    ("currency:lower-case", "recharge_order", {"currency": "Jpy"}),
    ("currency:lower-case currency:own", "recharge_order", {"currency": "usd"}),
    ("currency:own", "recharge_order", {"currency": "USD"}),
    ("currency:convert", "recharge_order", {"currency": "EUR", "amount": 1}),
    ("currency:convert", "recharge_order", {"currency": "IDR", "amount": 150_000}),
    ("currency:overflow", "recharge_order", {"currency": "XAU"}),
    ("currency:overflow", "recharge_order", {"currency": "xau", "amount": MAX_AMOUNT}),
    ("currency:convert", "recharge_order", {"currency": "XAU", "amount": Raw("0.000001")}),
    ("currency:convert", "recharge_order", {"currency": "XAG", "amount": 1}),
    ("beans:negative", "recharge_order", {"beans": -1}),
    ("beans:fraction", "recharge_order", {"beans": Raw("2.5")}),
    ("beans:bool", "recharge_order", {"beans": True}),
    ("beans:integral-float", "recharge_order", {"beans": Raw("30.0")}),
    ("beans:int64", "recharge_order", {"beans": 2**63}),
    ("beans:null", "recharge_order", {"beans": None}),
    ("product_id:empty", "recharge_order", {"product_id": ""}),
    ("product_id:too-long", "recharge_order", {"product_id": "p" * 129}),
    ("product_id:wrong-type", "recharge_order", {"product_id": 5}),
    ("product_id:boundary", "recharge_order", {"product_id": "beans_100", "beans": 100, "promo": "bf"}),
    # redeem_order
    ("order_id:missing", "redeem_order", {"order_id": ABSENT}),
    ("order_id:null", "redeem_order", {"order_id": None}),
    ("order_id:too-long", "redeem_order", {"order_id": "o" * 129}),
    ("order_id:surrogate", "redeem_order", {"order_id": "o\ud800"}),
    ("product_id:missing", "redeem_order", {"product_id": ABSENT}),
    ("product_id:empty", "redeem_order", {"product_id": ""}),
    ("product_id:wrong-type", "redeem_order", {"product_id": 12}),
    ("beans:missing", "redeem_order", {"beans": ABSENT}),
    ("beans:null", "redeem_order", {"beans": None}),
    ("beans:negative", "redeem_order", {"beans": -1}),
    ("beans:fraction", "redeem_order", {"beans": Raw("1.5")}),
    ("beans:wrong-type", "redeem_order", {"beans": "30"}),
    ("beans:bool", "redeem_order", {"beans": True}),
    ("beans:int64", "redeem_order", {"beans": 2**63}),
    ("beans:int64", "redeem_order", {"beans": MAX_INT}),
    ("beans:uint64", "redeem_order", {"beans": 2**64}),
    ("beans:1e400", "redeem_order", {"beans": Raw("1e400")}),
    ("beans:integral-float", "redeem_order", {"beans": Raw("30.0")}),
    ("beans:boundary", "redeem_order", {"beans": 0}),
    # free-form properties
    ("properties:float", "minis_visit", {"score": Raw("NaN")}),
    ("properties:float", "minis_visit", {"score": [Raw("Infinity")]}),
    ("properties:float", "minis_visit", {"score": Raw("1e400")}),
    ("properties:float", "minis_visit", {"score": Raw("1e-400")}),
    ("properties:float", "minis_visit", {"ratio": Raw("1.5")}),
    ("properties:float", "minis_visit", {"ratio": Raw("2.0")}),
    ("properties:float", "minis_visit", {"ratio": Raw("0.1")}),
    ("properties:float", "minis_visit", {"ratio": Raw("1E+2")}),
    ("properties:float", "minis_visit", {"ratio": Raw("123456789012345678901234567890.5")}),
    ("properties:float", "minis_visit", {"nested": {"deep": [1, Raw("2.5")]}}),
    ("properties:float", "app_launch", {"ratio": Raw("0.25")}),
    ("properties:big-int", "minis_visit", {"n": 2**63}),
    ("properties:big-int", "minis_visit", {"n": 2**64 - 1}),
    ("properties:big-int", "minis_visit", {"n": 2**64}),
    ("properties:big-int", "minis_visit", {"n": -(2**63)}),
    ("properties:big-int", "minis_visit", {"n": -(2**63) - 1}),
    ("properties:big-int", "minis_visit", {"n": 10**30}),
    ("properties:surrogate", "minis_visit", {"title": "bad \ud800"}),
    ("properties:surrogate", "minis_visit", {"\udfff": 1}),
    ("properties:surrogate", "app_launch", {"note": "\ud800"}),
    ("properties:non-ascii", "minis_visit", {"title": "\u604b\u7231", "\u00e9": "\U0001f3ac"}),
    ("properties:non-ascii", "app_launch", {"title": "\u604b\u7231"}),
    ("properties:control", "minis_visit", {"c": '\x00\x01\x08\t\n\x0b\x0c\r\x1f\x7f"\\/'}),
    ("properties:control", "minis_visit", {"c": "\u2028\u2029\ufeff\ufffe\uffff\x85"}),
    ("properties:control", "redeem_order", {"\n": "\x7f"}),
    ("properties:nested", "minis_visit", {"nested": {"z": [1, None, True], "a": {}}}),
    ("properties:nested", "session_end", {"nested": [[], {}, [[{"b": 1, "a": 2}]]]}),
    ("properties:nested", "minis_visit", {"": {"": ""}}),
    (
        "properties:sorted",
        "minis_visit",
        {"b": 1, "a": "x", "B": 2, "\u00e9": 3, "\U0001f3ac": 4, "\uffff": 5},
    ),
    ("properties:typed-elsewhere", "app_launch", {"amount": 5, "duration_ms": -1, "beans": "x"}),
    ("properties:typed-elsewhere", "my_custom_event", {"entry_point": "feed", "duration_ms": 5}),
    ("properties:typed-elsewhere", "last_free_episode_watch", {"drama_id": "d42", "episode": 7}),
    ("properties:typed-elsewhere", "redeem_order", {"coupon": None}),
    ("properties:too-long", "my_custom_event", {"blob": "x" * MAX_PROPERTIES_LENGTH}),
    ("properties:too-long", "minis_visit", {"blob": "x" * (MAX_PROPERTIES_LENGTH - 11)}),
    ("properties:too-long", "minis_visit", {"blob": "x" * (MAX_PROPERTIES_LENGTH - 10)}),
    ("properties:too-long", "minis_visit", {"blob": "\x01" * 5_460}),
    ("properties:too-long", "minis_visit", {"blob": "\x01" * 5_459}),
    ("properties:too-long", "app_launch", {"blob": "y" * (minidrama.bulk.SAFE_PROPERTIES_LENGTH - 11)}),
    ("properties:too-long", "app_launch", {"blob": "y" * (minidrama.bulk.SAFE_PROPERTIES_LENGTH - 10)}),
    ("properties:too-long", "minis_visit", {"blob": "\U0001f3ac" * (MAX_PROPERTIES_LENGTH - 11)}),
    # accepted by the rules, too big for the queue's 192 KiB per event: refused
    ("properties:queue-limit", "minis_visit", {"blob": "\ufffe" * (MAX_PROPERTIES_LENGTH - 11)}),
    # (each U+FFFE is 6 bytes once escaped for the queue: 32,735 of them or more are over the limit)
    ("properties:queue-limit", "minis_visit", {"blob": "\ufffe" * 32_745}),
]
for tags, name, props in PROPERTIES:
    label = ",".join(
        f"{key}={'absent' if value is ABSENT else dump(value)[:40]}" for key, value in props.items()
    )
    event_case(tags, f"{name} {label}", name, props)


def nested(depth: int) -> Raw:
    return Raw("[" * depth + "1" + "]" * depth)


for depth in (100, 253, 254, 255, 256, 300, 500, 990, 1030):
    event_case("properties:deep", f"properties nested {depth} deep", "minis_visit", {"deep": nested(depth)})

# An unknown top-level key is ignored by both paths, unless the event nests past the exact
# decoder's limit through it (the fast path's typed decoder skips such a key unread).
for depth in (498, 499, 500, 1030):
    event_case("unknown-keys", f"unknown top-level key nested {depth} deep", "minis_visit", x=nested(depth))

# Valid events of every name.
APP_LAUNCH_OPTIONALS = {
    "success": False,
    "launch_ms": 812,
    "device_brand": "Apple",
    "device_model": "iPhone15,2",
    "tiktok_version": "37.1.0",
    "gender": "female",
    "age_group": "18-24",
}
event_case(
    "valid:app_launch app_launch:all",
    "app_launch complete",
    "app_launch",
    {**APP_LAUNCH_OPTIONALS, "ab": "B"},
)
event_case("valid:app_launch app_launch:none", "app_launch minimal", "app_launch", os="iOS", region="us")
event_case(
    "valid:app_launch app_launch:null", "app_launch nulls", "app_launch", dict.fromkeys(APP_LAUNCH_OPTIONALS)
)
for key, value in APP_LAUNCH_OPTIONALS.items():
    event_case(f"valid:app_launch app_launch:{key}", f"app_launch with {key}", "app_launch", {key: value})
    event_case(
        f"valid:app_launch app_launch:without-{key}",
        f"app_launch without {key}",
        "app_launch",
        {k: v for k, v in APP_LAUNCH_OPTIONALS.items() if k != key},
    )
event_case(
    "valid:app_launch",
    "app_launch empty texts",
    "app_launch",
    dict.fromkeys(list(APP_LAUNCH_OPTIONALS)[3:], ""),
)
event_case("valid:session_end", "session_end", "session_end")
event_case(
    "valid:session_end", "session_end other hour", "session_end", event_time="2026-11-28T03:59:59.999999Z"
)
event_case("valid:recharge_order", "recharge_order", "recharge_order")
event_case(
    "valid:recharge_order",
    "recharge_order complete",
    "recharge_order",
    {"beans": 500, "product_id": "pack-500", "currency": "eur"},
    session_id=ABSENT,
)
event_case("valid:redeem_order", "redeem_order", "redeem_order")
event_case(
    "valid:redeem_order", "redeem_order no session", "redeem_order", {"extra": [1, "x"]}, session_id=ABSENT
)
for page_view in FUNNEL_PAGE_VIEWS:
    event_case(f"valid:funnel valid:{page_view}", page_view, page_view, session_id=ABSENT)
for custom in ("my_custom_event", "a", "a" * 64, "a_9_", "z0"):
    event_case("valid:custom", f"custom {custom[:10]}", custom, {"k": custom})

# Byte-level lines.
LINE = to_line(make_event("minis_visit", event_id="@ID@"))
raw_case("line:blank", "blank", b"")
raw_case("line:blank", "spaces", b"   ")
raw_case("line:blank", "tab and CR", b"\t\r")
raw_case("line:blank", "vertical tab and form feed", b"\x0b\x0c")
raw_case("line:crlf valid:funnel", "CRLF", LINE + b"\r")
raw_case("line:crlf valid:funnel", "padded", b" \t" + LINE + b" \t")
raw_case(
    "line:spaced valid:funnel",
    "spaced JSON",
    json.dumps(make_event("minis_visit", event_id="@ID@"), indent=None).encode(),
)
raw_case("line:non-utf8", "bytes ff fe", b"\xff\xfe")
raw_case("line:non-utf8", "latin-1 in a value", LINE.replace(b'"ios"', b'"caf\xe9"'))
raw_case("line:non-utf8", "overlong slash", LINE.replace(b'"ios"', b'"\xc0\xaf"'))
raw_case("line:non-utf8", "CESU surrogate", LINE.replace(b'"ios"', b'"\xed\xa0\x80"'))
raw_case("line:non-utf8", "truncated sequence", LINE.replace(b'"ios"', b'"\xe6\x81"'))
raw_case("line:non-utf8", "beyond U+10FFFF", LINE.replace(b'"ios"', b'"\xf4\x90\x80\x80"'))
raw_case("line:non-utf8", "non-UTF-8 non-JSON", b"{\xff")
raw_case("line:bom", "UTF-8 BOM", b"\xef\xbb\xbf" + LINE)
raw_case("line:non-json", "broken", b"{broken")
raw_case("line:non-json", "single quotes", b"{'event_id': 'x'}")
raw_case("line:non-json", "trailing comma", LINE[:-1] + b",}")
raw_case("line:non-json", "two objects", LINE + b" " + LINE)
raw_case("line:non-json", "trailing garbage", LINE + b"x")
raw_case("line:non-json", "NUL after", LINE + b"\x00")
raw_case("line:non-json", "form feed before", b"\x0c" + LINE)
raw_case("line:non-json", "no-break space before", b"\xc2\xa0" + LINE)
raw_case("line:non-json", "NaN", b"NaN")
raw_case("line:non-json", "Infinity value", LINE.replace(b'"ios"', b"Infinity"))
raw_case("line:non-json", "leading zero", to_line(make_event("session_end", {"duration_ms": Raw("01")})))
raw_case("line:non-json", "plus sign", to_line(make_event("session_end", {"duration_ms": Raw("+1")})))
raw_case("line:non-json", "bare fraction", to_line(make_event("session_end", {"duration_ms": Raw(".5")})))
raw_case("line:non-json", "bare point", to_line(make_event("session_end", {"duration_ms": Raw("1.")})))
raw_case("line:non-json", "raw tab in a string", LINE.replace(b'"ios"', b'"i\tos"'))
raw_case("line:non-json", "raw control in a string", LINE.replace(b'"ios"', b'"i\x01os"'))
raw_case("line:non-json", "raw newline escape missing", LINE.replace(b'"ios"', b'"i\\x41"'))
raw_case("line:non-json", "truncated", LINE[:40])
raw_case("line:non-json", "deep arrays", b"[" * 100_000 + b"]" * 100_000)
raw_case("line:non-json", "1e400 alone", b"1e400")
raw_case("line:not-object", "array", b"[1, 2]")
raw_case("line:not-object", "string", b'"event"')
raw_case("line:not-object", "number", b"42")
raw_case("line:not-object", "big number", b"18446744073709551616")
raw_case("line:not-object", "null", b"null")
raw_case("line:not-object", "true", b"true")
raw_case("line:not-object", "empty object", b"{}")
raw_case("line:not-object", "array of events", b"[" + LINE + b"]")
raw_case(
    "line:raw-escapes valid:funnel", "raw astral pair escape", LINE.replace(b'"ios"', b'"\\ud83c\\udfac"')
)
raw_case("line:raw-escapes", "raw escaped slash and unicode", LINE.replace(b'"ios"', b'"\\u0069\\/os"'))
raw_case("line:raw-escapes", "raw NUL escape in the id", LINE.replace(b'"@ID@"', b'"@ID@\\u0000"'))
raw_case("line:raw-escapes", "raw escaped region", LINE.replace(b'"US"', b'"\\u0055\\u0053"'))
raw_case(
    "line:raw-escapes event_id:surrogate", "raw reversed pair", LINE.replace(b'"@ID@"', b'"\\udfac\\ud83c"')
)
# duplicate keys inside one object: the last value counts in both decoders
event_case("line:duplicate-keys", "duplicate user_id", "minis_visit", before=(("user_id", "a"),), user_id="b")
event_case("line:duplicate-keys", "duplicate user_id bad last", "minis_visit", after=(("user_id", ""),))
event_case("line:duplicate-keys", "duplicate user_id bad first", "minis_visit", before=(("user_id", 5),))
event_case("line:duplicate-keys", "duplicate event_id", "minis_visit", after=(("event_id", "other-id"),))
event_case(
    "line:duplicate-keys", "duplicate event_name", "session_end", after=(("event_name", "app_launch"),)
)
event_case("line:duplicate-keys", "duplicate float first", "minis_visit", before=(("region", Raw("1.5")),))
event_case(
    "line:duplicate-keys",
    "duplicate property",
    "session_end",
    properties=Pairs((("duration_ms", -1), ("duration_ms", 5))),
)
event_case(
    "line:duplicate-keys",
    "duplicate property float first",
    "minis_visit",
    properties=Pairs((("x", Raw("1.5")), ("x", 2))),
)
event_case(
    "line:duplicate-keys",
    "duplicate properties",
    "app_launch",
    after=(("properties", {"entry_point": "search", "launch_ms": 3}),),
)

CASE_BY_ID = {case.id: case for case in CASES}
assert len(CASE_BY_ID) == len(CASES), "case ids must be unique"
VALID_CASES = [case for case in CASES if any(tag.startswith("valid:") for tag in case.tags)]
REFUSED_CASES = [case for case in CASES if "properties:queue-limit" in case.tags]

# The kinds of input the tests must hold (asserted on every input set that claims to cover them).
REQUIRED_TAGS = frozenset(
    {
        *(
            f"{name}:{kind}"
            for name in ("event_id", "event_name", "event_time", "user_id", "os", "region")
            for kind in ("missing", "null", "wrong-type", "empty", "surrogate")
        ),
        *(f"{name}:too-long" for name in ("event_id", "event_name", "user_id", "session_id", "os")),
        *(f"session_id:{kind}" for kind in ("missing", "null", "wrong-type", "empty", "surrogate")),
        "event_name:pattern",
        "event_id:bool",
        "os:non-ascii",
        "region:non-ascii",
        "region:lower-case",
        "region:user-assigned",
        "region:pattern",
        *(
            f"event_time:{kind}"
            for kind in (
                "24h",
                "offset",
                "lower-case",
                "7-digits",
                "leap-second",
                "feb-30",
                "year-1",
                "year-9999",
            )
        ),
        *(
            f"entry_point:{kind}"
            for kind in ("missing", "null", "empty", "too-long", "wrong-type", "surrogate")
        ),
        "success:wrong-type",
        "success:int",
        *(
            f"{name}:{kind}"
            for name in ("launch_ms", "duration_ms", "beans")
            for kind in ("negative", "fraction", "bool", "int64", "integral-float")
        ),
        *(f"{name}:{kind}" for name in ("launch_ms", "duration_ms") for kind in ("uint64", "1e400")),
        "duration_ms:missing",
        "beans:missing",
        *(f"amount:{kind}" for kind in ("missing", "null", "zero", "negative", "huge", "1e400", "decimals")),
        "amount:integral-float",
        "amount:wrong-type",
        "amount:bool",
        *(
            f"currency:{kind}"
            for kind in (
                "missing",
                "pattern",
                "lower-case",
                "no-rate",
                "own",
                "overflow",
                "convert",
                "wrong-type",
            )
        ),
        "order_id:missing",
        "product_id:missing",
        *(
            f"properties:{kind}"
            for kind in (
                "null",
                "not-object",
                "nested",
                "float",
                "too-long",
                "non-ascii",
                "control",
                "surrogate",
                "deep",
                "big-int",
                "queue-limit",
            )
        ),
        "unknown-keys",
        *(
            f"line:{kind}"
            for kind in ("blank", "non-utf8", "non-json", "not-object", "duplicate-keys", "bom", "crlf")
        ),
        *(f"valid:{name}" for name in (*KNOWN_PROPERTIES, "funnel", "custom")),
        *(f"valid:{name}" for name in FUNNEL_PAGE_VIEWS),
        "app_launch:all",
        "app_launch:none",
        *(f"app_launch:{key}" for key in APP_LAUNCH_OPTIONALS),
        *(f"app_launch:without-{key}" for key in APP_LAUNCH_OPTIONALS),
    }
)
# Tags that depend on how lines are arranged, found by :func:`arrangement_tags`.
DUPLICATE_TAGS = frozenset(
    {
        "duplicate:same-content",
        "duplicate:different-content",
        "duplicate:first-rejected",
        "duplicate:first-refused",
        "duplicate:across-chunks",
        "duplicate:within-chunk",
    }
)


def test_the_cases_cover_every_required_kind() -> None:
    tags = {tag for case in CASES for tag in case.tags}
    assert REQUIRED_TAGS - tags == set()
    assert len(CASES) > 400


# --- random events (after tests/unit/test_validation_properties.py) ------------------------------

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
CONVERTIBLE = ("USD", "EUR", "JPY", "IDR", "usd", "eur")

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
properties_like = st.dictionaries(
    st.one_of(st.sampled_from(PROPERTY_NAMES), st.text(max_size=6)), json_values, max_size=6
)
identifiers = st.text(min_size=1, max_size=128)
descriptions = st.text(max_size=128)
counts = st.one_of(st.integers(min_value=0, max_value=MAX_INT), st.integers(min_value=0, max_value=1000))
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(lambda m: timedelta(minutes=m))
instants = st.one_of(
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2026, 11, 29, 12, 0), timezones=st.just(UTC)
    ),
    st.datetimes(
        min_value=datetime(2026, 11, 27), max_value=datetime(2026, 11, 29, 13), timezones=st.just(UTC)
    ),
)
amounts = st.decimals(min_value=Decimal("0.000001"), max_value=MAX_AMOUNT, places=AMOUNT_SCALE)
free_form = st.dictionaries(
    st.text(max_size=8).filter(lambda key: key not in PROPERTY_NAMES),
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.text(max_size=10),
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
        ),
        max_leaves=6,
    ),
    max_size=3,
)


def rfc3339(instant: datetime, offset: timedelta, fraction_digits: int, lower: bool) -> str:
    local = instant.astimezone(timezone(offset))
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction_digits:
        text += "." + f"{local.microsecond:06d}{'987'}"[:fraction_digits]
    if offset == timedelta(0):
        text += "Z"
    else:
        sign = "+" if offset > timedelta(0) else "-"
        minutes = abs(int(offset.total_seconds())) // 60
        text += f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return text.replace("T", "t").replace("Z", "z") if lower else text


@st.composite
def typed_properties(draw: st.DrawFn, name: str) -> dict[str, Any]:
    if name == "app_launch":
        props: dict[str, Any] = {"entry_point": draw(identifiers)}
        for key, strategy in (
            ("success", st.booleans() | st.none()),
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
    region = draw(st.sampled_from(sorted(COUNTRY_CODES)))
    event: dict[str, Any] = {
        "event_id": draw(identifiers),
        "event_name": name,
        "event_time": rfc3339(
            draw(instants), draw(offsets), draw(st.integers(min_value=0, max_value=9)), draw(st.booleans())
        ),
        "user_id": draw(identifiers),
        "os": draw(st.text(min_size=1, max_size=32)),
        "region": draw(st.sampled_from([region, region.lower()])),
        "properties": {**draw(free_form), **draw(typed_properties(name))},
    }
    if name in ("app_launch", "session_end") or draw(st.booleans()):
        event["session_id"] = draw(identifiers)
    return event


@st.composite
def broken_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with one to three fields (or properties) replaced by random JSON values."""
    event = draw(valid_events())
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        if draw(st.booleans()):
            event[draw(st.sampled_from(TOP_LEVEL_FIELDS))] = draw(json_values)
        elif isinstance(event.get("properties"), dict):
            event["properties"][draw(st.sampled_from(PROPERTY_NAMES))] = draw(json_values)
    return event


event_like = st.dictionaries(
    st.sampled_from(TOP_LEVEL_FIELDS),
    st.one_of(json_values, st.sampled_from(KNOWN_NAMES), properties_like),
    max_size=len(TOP_LEVEL_FIELDS),
)


# --- running both paths ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    data: bytes  # without its newline
    tags: tuple[str, ...]
    event_id: str | None  # the id the line was written with (None: its own, or none)


@dataclass
class Outcome:
    printed: dict[str, int]
    table: pa.Table
    quarantine: list[dict[str, Any]]
    files_per_partition: Counter[str]
    quarantine_dirs: set[str]
    stored_names: dict[str, str] = field(default_factory=dict)  # event_id -> event_name


def write_file(path: Path, lines: list[Line]) -> Path:
    path.write_bytes(b"".join(line.data + b"\n" for line in lines))
    return path


def new_lake(root: Path) -> tuple[LocalStorage, AppConfig]:
    storage = LocalStorage(root)
    app, _key = register_app(storage, APP_ID, currency="USD")
    storage.put_bytes(RATES_CONFIG_KEY, json.dumps(RATES).encode())
    return storage, app


def sort_key(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True)


def run(
    path: Path,
    lake_root: Path,
    *,
    bulk: bool,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Outcome:
    storage, app = new_lake(lake_root)
    monkeypatch.setattr(ingestion, "FILE_CHUNK_LINES", BIG_CHUNK)
    capsys.readouterr()
    code = ingestion.ingest_files(storage, app, [path], quiet=True, bulk=bulk, clock=lambda: RECEIVED_AT)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    printed_lines = captured.out.splitlines()
    assert len(printed_lines) == 1, captured.out
    printed = json.loads(printed_lines[0])
    assert list(printed) == ["accepted", "rejected"]
    table, quarantine, files, quarantine_dirs = read_lake(storage)
    names = dict(
        zip(table.column("event_id").to_pylist(), table.column("event_name").to_pylist(), strict=True)
    )
    return Outcome(printed, table, quarantine, files, quarantine_dirs, names)


def read_lake(storage: LocalStorage) -> tuple[pa.Table, list[dict[str, Any]], Counter[str], set[str]]:
    """The lake's events (sorted), its quarantine records (sorted), files per events partition,
    and the quarantine's folders."""
    tables = []
    files: Counter[str] = Counter()
    for info in storage.list("events/"):
        assert info.key.endswith(".parquet"), info.key
        files[info.key.rsplit("/", 1)[0]] += 1
        tables.append(pq.read_table(storage.path(info.key)))
    table = pa.concat_tables(tables) if tables else EVENTS_SCHEMA.empty_table()
    table = table.sort_by(
        [("event_time", "ascending"), ("event_id", "ascending"), ("received_at", "ascending")]
    )
    quarantine = [
        json.loads(text)
        for info in storage.list("quarantine/")
        for text in storage.get_bytes(info.key).decode().splitlines()
    ]
    quarantine.sort(key=sort_key)
    quarantine_dirs = {info.key.rsplit("/", 1)[0] for info in storage.list("quarantine/")}
    return table, quarantine, files, quarantine_dirs


def describe_rows(per_event: pa.Table, bulk: pa.Table) -> str:
    """Where two tables of rows differ, for the assertion message."""
    if per_event.schema != bulk.schema:
        return f"schemas differ:\n{per_event.schema}\n---\n{bulk.schema}"
    ours = {row["event_id"]: row for row in per_event.to_pylist()}
    theirs = {row["event_id"]: row for row in bulk.to_pylist()}
    lines = [f"only per-event: {ours[key]!r}" for key in sorted(ours.keys() - theirs.keys())[:5]]
    lines += [f"only bulk: {theirs[key]!r}" for key in sorted(theirs.keys() - ours.keys())[:5]]
    for key in sorted(ours.keys() & theirs.keys()):
        if ours[key] != theirs[key]:
            diff = {
                col: (ours[key][col], theirs[key][col])
                for col in ours[key]
                if ours[key][col] != theirs[key][col]
            }
            lines.append(f"{key!r} differs (per-event, bulk): {diff!r}")
    return "\n".join(lines[:20]) or "rows equal, order or chunking differs"


def describe_quarantine(per_event: list[dict[str, Any]], bulk: list[dict[str, Any]]) -> str:
    ours = {record["index"]: record for record in per_event}
    theirs = {record["index"]: record for record in bulk}
    lines = []
    for index in sorted(ours.keys() | theirs.keys()):
        if ours.get(index) != theirs.get(index):
            lines.append(
                f"line {index}: per-event {ours.get(index)!r}\n        bulk      {theirs.get(index)!r}"
            )
    return "\n".join(lines[:10])


def compare(
    lines: list[Line],
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *,
    chunk: int | None = None,
    one_file: bool = True,
) -> tuple[Outcome, Outcome]:
    """Ingest the lines with both paths into fresh lakes; assert the outcomes are the same (and,
    with ``one_file``, that the bulk path wrote one file per partition)."""
    if chunk is not None:
        monkeypatch.setattr(ingestion, "BULK_CHUNK_LINES", chunk)
    path = write_file(workdir / "events.ndjson", lines)
    per_event = run(path, workdir / "per-event", bulk=False, capsys=capsys, monkeypatch=monkeypatch)
    bulk = run(path, workdir / "bulk", bulk=True, capsys=capsys, monkeypatch=monkeypatch)
    assert bulk.quarantine == per_event.quarantine, describe_quarantine(per_event.quarantine, bulk.quarantine)
    assert bulk.table.schema.equals(EVENTS_SCHEMA)
    assert per_event.table.schema.equals(EVENTS_SCHEMA)
    assert bulk.table.equals(per_event.table), describe_rows(per_event.table, bulk.table)
    assert bulk.printed == per_event.printed
    assert bulk.quarantine_dirs == per_event.quarantine_dirs
    if one_file:
        assert all(count == 1 for count in bulk.files_per_partition.values()), bulk.files_per_partition
    nonblank = sum(1 for line in lines if line.data.strip())
    assert per_event.printed["accepted"] + per_event.printed["rejected"] == nonblank
    assert per_event.printed["rejected"] == len(per_event.quarantine)
    return per_event, bulk


def arrangement_tags(lines: list[Line], outcome: Outcome, chunk: int) -> set[str]:
    """The duplicate kinds the arrangement of ``lines`` holds, from the (agreed) outcome."""
    rejected = {record["index"]: record for record in outcome.quarantine}
    number = 0
    ordinal = 0  # among non-blank lines: the bulk path's chunks are counted in those
    first: dict[str, tuple[bytes, int, int]] = {}  # event id -> first line, its number, its chunk
    tags: set[str] = set()
    for line in lines:
        number += 1
        if not line.data.strip():
            continue
        ordinal += 1
        chunk_index = (ordinal - 1) // chunk
        if line.event_id is None:
            continue
        if line.event_id in first:
            data, first_number, first_chunk = first[line.event_id]
            tags.add("duplicate:same-content" if data == line.data else "duplicate:different-content")
            tags.add("duplicate:across-chunks" if first_chunk != chunk_index else "duplicate:within-chunk")
            record = rejected.get(first_number)
            if record is not None and record["event_id"] == line.event_id:
                tags.add("duplicate:first-rejected")
                if record["errors"][0].startswith("event: event is"):
                    tags.add("duplicate:first-refused")
        else:
            first[line.event_id] = (line.data, number, chunk_index)
    return tags


def case_line(case: Case, event_id: str) -> Line:
    return Line(case.make(event_id), case.tags, None if case.own_id else event_id)


def every_case(seed: int) -> list[Line]:
    """Every case once (some followed at once by a copy, or by a valid event with the same id),
    then again with the same ids (same content), then a valid event with each of those ids
    (different content: stored where the first copy was rejected), shuffled within blocks so that
    copies land in other chunks."""
    shuffle = random.Random(seed).shuffle
    first: list[Line] = []
    for index, case in enumerate(CASES):
        line = case_line(case, f"a-{index}")
        first.append(line)
        if index % 5 == 0:
            first.append(line)
        if index % 7 == 0:
            first.append(case_line(VALID_CASES[index % len(VALID_CASES)], f"a-{index}"))
    again = [case_line(case, f"a-{index}") for index, case in enumerate(CASES)]
    shuffle(again)
    other = [case_line(VALID_CASES[index % len(VALID_CASES)], f"a-{index}") for index in range(len(CASES))]
    shuffle(other)
    return first + again + other


@dataclass
class SlowPath:
    """What the bulk path deferred to the per-event validator (in this process)."""

    deferred: int = 0
    accepted_ids: set[str] = field(default_factory=set)


@pytest.fixture
def slow_path(monkeypatch: pytest.MonkeyPatch) -> SlowPath:
    seen = SlowPath()
    validate = minidrama.bulk.validate_events

    def counting(events: list[Any], **kwargs: Any) -> Any:
        result = validate(events, **kwargs)
        seen.deferred += len(events)
        seen.accepted_ids.update(row["event_id"] for row in result.accepted)
        return result

    monkeypatch.setattr(minidrama.bulk, "validate_events", counting)
    return seen


def assert_fast_path_stored_every_kind(outcome: Outcome, slow: SlowPath, lines: list[Line]) -> None:
    """Most lines were not deferred, and the column-wise checks stored events of every kind."""
    assert slow.deferred < 0.9 * len([line for line in lines if line.data.strip()])
    fast = {name for event_id, name in outcome.stored_names.items() if event_id not in slow.accepted_ids}
    assert {"app_launch", "session_end", "redeem_order", "recharge_order", "my_custom_event"} <= fast, fast
    assert fast & set(FUNNEL_PAGE_VIEWS), fast


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [50_000, 50, 7])
def test_every_case_gives_the_same_outcome_on_both_paths(
    chunk: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    slow_path: SlowPath,
) -> None:
    # GIVEN every case, repeated with the same and with other content
    lines = every_case(seed=chunk)
    # WHEN the file is ingested by both paths (bulk in chunks of `chunk` lines)
    per_event, bulk = compare(lines, tmp_path, capsys, monkeypatch, chunk=chunk)
    # THEN they agree (compare), and the input held every kind it is meant to
    tags = {tag for line in lines for tag in line.tags} | arrangement_tags(lines, per_event, chunk)
    assert REQUIRED_TAGS - tags == set()
    expected_duplicates = DUPLICATE_TAGS if chunk < 50_000 else DUPLICATE_TAGS - {"duplicate:across-chunks"}
    assert expected_duplicates - tags == set()
    # AND every rule rejected something, naming its field
    fields = Counter(error.split(":")[0] for record in per_event.quarantine for error in record["errors"])
    assert set(fields) >= {
        "event",
        "event_id",
        "event_name",
        "event_time",
        "user_id",
        "session_id",
        "os",
        "region",
        "properties",
        "entry_point",
        "success",
        "launch_ms",
        "device_brand",
        "device_model",
        "tiktok_version",
        "gender",
        "age_group",
        "duration_ms",
        "order_id",
        "amount",
        "currency",
        "beans",
        "product_id",
    }, fields
    assert any(field.startswith("line ") for field in fields)
    errors = [error for record in per_event.quarantine for error in record["errors"]]
    for fragment in (
        "not UTF-8",
        "not valid JSON",
        "no conversion rate",
        "cannot be converted",
        "once stored",
    ):
        assert any(fragment in error for error in errors), fragment
    # AND the fast path took part: most lines were not deferred, and it stored events of every kind
    assert_fast_path_stored_every_kind(per_event, slow_path, lines)
    assert per_event.printed["accepted"] > 500
    assert len(per_event.files_per_partition) > 10


def test_worker_processes_give_the_same_outcome(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    slow_path: SlowPath,
) -> None:
    # GIVEN every case, twice over, checked in chunks of 50 lines by worker processes (whatever
    # the machine's CPU count)
    monkeypatch.setattr(ingestion, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(ingestion.os, "cpu_count", lambda: ingestion.MAX_WORKERS)
    lines = every_case(seed=1) + every_case(seed=2)
    # WHEN ingested by both paths THEN they agree
    per_event, _bulk = compare(lines, tmp_path, capsys, monkeypatch, chunk=50)
    assert per_event.printed["accepted"] > 1_000
    # AND the chunks were checked in other processes: none deferred an event in this one
    assert slow_path.deferred == 0


def test_a_call_flushed_several_times_in_row_groups_gives_the_same_outcome(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN every case, twice over, in chunks of 7 lines, the call's files stored every 60 rows
    # and its rows encoded in row groups of 5 (the largest hour's as soon as 12 are kept): so
    # duplicates and refused events meet the ids of earlier flushes, and files hold many groups
    monkeypatch.setattr(ingestion, "BULK_FLUSH_ROWS", 60)
    monkeypatch.setattr(PartitionFiles, "ROW_GROUP_ROWS", 5)
    monkeypatch.setattr(PartitionFiles, "KEPT_ROWS", 12)
    lines = every_case(seed=3) + every_case(seed=4)
    # WHEN ingested by both paths THEN they agree, row for row and rejection for rejection
    per_event, bulk = compare(lines, tmp_path, capsys, monkeypatch, chunk=7, one_file=False)
    # AND the bulk path wrote several files of some partitions, several row groups in some files
    assert max(bulk.files_per_partition.values()) > 1
    groups = [pq.ParquetFile(path).metadata.num_row_groups for path in (tmp_path / "bulk").rglob("*.parquet")]
    assert max(groups) > 1


def test_a_big_file_of_mostly_valid_events(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    slow_path: SlowPath,
) -> None:
    # GIVEN 15,000 lines over 48 hours of event time: valid events of every name, one in ten
    # broken in some way, one in twenty a copy of an earlier id
    rng = random.Random(20261128)
    lines: list[Line] = []
    start = RECEIVED_AT - timedelta(hours=40)
    for n in range(15_000):
        case = rng.choice(VALID_CASES) if rng.random() > 0.1 else rng.choice(CASES)
        event_id = f"b-{rng.randrange(n)}" if n and rng.random() < 0.05 else f"b-{n}"
        line = case.make(event_id)
        moment = start + timedelta(seconds=rng.randrange(48 * 3600), microseconds=rng.randrange(10**6))
        stamp = moment.isoformat().replace("+00:00", "Z").encode()
        line = line.replace(b'"2026-11-28T10:15:00.123Z"', b'"' + stamp + b'"')
        lines.append(Line(line, case.tags, event_id))
    # WHEN ingested by both paths, bulk in chunks of 4,096 lines
    per_event, bulk = compare(lines, tmp_path, capsys, monkeypatch, chunk=2_048)
    # THEN they agree, over many hour partitions, each one file on the bulk path
    assert len(bulk.files_per_partition) >= 40
    assert per_event.printed["accepted"] > 12_500
    # AND most events took the fast path
    assert slow_path.deferred < 0.3 * len(lines)
    assert_fast_path_stored_every_kind(per_event, slow_path, lines)


# The cases in a fixed shuffled order, cut into strata of ten, and the cases of each required tag:
# each example takes (or leaves) one case of each stratum and of each tag, so that the examples
# together hold every kind of line (Hypothesis' draws favour some values: a window of the cases or
# a seed would repeat), in mixes that differ from example to example.
ORDER = random.Random(0).sample(CASES, len(CASES))
STRATA = [ORDER[start : start + 10] for start in range(0, len(ORDER), 10)]
TAGGED = [[case for case in CASES if tag in case.tags] for tag in sorted(REQUIRED_TAGS)]


@st.composite
def input_sets(draw: st.DrawFn) -> tuple[list[Line], int]:
    """Lines of cases (one of each stratum and of some tags, or none: a failing example shrinks to
    the lines that matter), valid events and random events, with event ids from a small pool
    (duplicates), in a random order, and the bulk path's chunk size."""
    cases = [
        stratum[draw(st.integers(min_value=0, max_value=len(stratum) - 1))]
        for stratum in STRATA
        if draw(st.integers(min_value=0, max_value=9))
    ]
    cases += [
        tagged[draw(st.integers(min_value=0, max_value=len(tagged) - 1))]
        for tagged in TAGGED
        if draw(st.integers(min_value=0, max_value=3)) == 3
    ]
    cases = draw(st.permutations(cases)) if draw(st.booleans()) else cases
    pool = draw(st.integers(min_value=1, max_value=len(cases) + 1))

    def some_id() -> str:
        return f"h-{draw(st.integers(min_value=0, max_value=pool - 1))}"

    lines = [case_line(case, some_id()) for case in cases]
    for _ in range(draw(st.integers(min_value=0, max_value=12))):
        if draw(st.booleans()):
            line = case_line(draw(st.sampled_from(VALID_CASES)), some_id())
        else:
            event = draw(st.one_of(valid_events(), broken_events(), event_like))
            own_id = draw(st.booleans())
            if not own_id:
                event["event_id"] = some_id()
            line = Line(to_line(event), ("random",), None if own_id else event["event_id"])
        lines.insert(draw(st.integers(min_value=0, max_value=len(lines))), line)
    if draw(st.booleans()):  # the same line again, later
        for _ in range(draw(st.integers(min_value=1, max_value=5))):
            lines.insert(draw(st.integers(min_value=0, max_value=len(lines))), draw(st.sampled_from(lines)))
    if draw(st.integers(min_value=0, max_value=3)) == 3:  # a copy of a refused event, later
        event_id = some_id()
        refused = case_line(draw(st.sampled_from(REFUSED_CASES)), event_id)
        position = draw(st.integers(min_value=0, max_value=len(lines)))
        lines.insert(position, refused)
        later = case_line(draw(st.sampled_from([*VALID_CASES, *REFUSED_CASES])), event_id)
        lines.insert(draw(st.integers(min_value=position + 1, max_value=len(lines))), later)
    chunk = draw(st.sampled_from([1, 2, 7, 50, 50_000]))
    return lines, chunk


def test_random_event_sets_give_the_same_outcome(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: Counter[str] = Counter()

    # Derandomized, so every run sees the same examples; not shrunk (an example takes ~0.2 s, and
    # a failure names the lines the paths disagree on, see compare()).
    @settings(
        max_examples=30,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    @given(input_sets())
    def check(drawn: tuple[list[Line], int]) -> None:
        lines, chunk = drawn
        with tempfile.TemporaryDirectory() as workdir:
            per_event, _bulk = compare(lines, Path(workdir), capsys, monkeypatch, chunk=chunk)
        seen.update(tag for line in lines for tag in line.tags)
        seen.update(arrangement_tags(lines, per_event, chunk))
        seen["accepted"] += per_event.printed["accepted"]
        seen["rejected"] += per_event.printed["rejected"]

    check()
    # the random inputs mixed random events with the cases and held most kinds of duplicate (every
    # kind of line and of duplicate is held to both paths by the deterministic test above)
    assert seen["random"] > 0 and len(DUPLICATE_TAGS & set(seen)) >= 4, seen
    assert len(REQUIRED_TAGS & set(seen)) > len(REQUIRED_TAGS) // 2
    assert seen["accepted"] > 500 and seen["rejected"] > 500


# --- the disagreements found, as their smallest inputs ---------------------------------------------


def test_properties_nested_to_any_depth_give_the_same_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN page views whose properties (or an unknown top-level key) nest arrays or objects from 1
    # to 1,100 deep: orjson reads 1,024 levels, the stdlib decoder as many as the Python stack
    # leaves, orjson writes 255
    lines = []
    # every 25 levels, and each level around the limit (500) and around orjson's own (1,024)
    for depth in [*range(1, 1_100, 25), *range(490, 511), *range(1_015, 1_030)]:
        arrays = Raw("[" * depth + "1" + "]" * depth)
        objects = Raw('{"a":' * depth + "1" + "}" * depth)
        for kind, value in (("arrays", arrays), ("objects", objects)):
            line = to_line(make_event("minis_visit", {"deep": value}, event_id=f"{kind}-{depth}"))
            lines.append(Line(line, ("properties:deep",), f"{kind}-{depth}"))
        line = to_line(make_event("minis_visit", event_id=f"top-{depth}", x=arrays))
        lines.append(Line(line, ("unknown-keys",), f"top-{depth}"))
    # WHEN ingested by both paths THEN they agree
    compare(lines, tmp_path, capsys, monkeypatch)


def test_an_impossible_date_beside_a_time_beyond_9999_in_utc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN, in one chunk, a date that does not exist and a time that is past 9999 once in UTC
    lines = [
        case_line(CASE_BY_ID["event_time 30 Feb (page view)"], "a"),
        case_line(CASE_BY_ID["event_time after 9999 in UTC (page view)"], "b"),
    ]
    # WHEN ingested by both paths THEN both are rejected by both, with the same reasons
    per_event, _bulk = compare(lines, tmp_path, capsys, monkeypatch)
    assert [record["errors"][0].split(",")[0] for record in per_event.quarantine] == [
        "event_time: not a valid date and time",
        "event_time: out of range in UTC",
    ]


# --- the local server's path: one request body at a time --------------------------------------


class _TableLake:
    """The local server's kind of sink, durable on return: rows as Arrow tables, the quarantine
    beside them (the server's group writer stores the same files, several requests at a time)."""

    def __init__(self, storage: LocalStorage) -> None:
        self.storage = storage

    def write(self, app_id: str, rows: list[dict[str, Any]], encoded: list[bytes] | None = None) -> None:
        write_events(self.storage, app_id, rows)

    def write_table(self, app_id: str, table: pa.Table, quarantine: tuple[str, bytes] | None) -> None:
        files = [(key, data, None) for key, data in encode_table(app_id, table)]
        self.storage.put_many(files + ([(*quarantine, None)] if quarantine else []))


def _post_all(
    root: Path, bodies: list[bytes], *, bulk: bool
) -> tuple[list[tuple[int, Any]], tuple[pa.Table, list[dict[str, Any]], Counter[str], set[str]]]:
    storage = LocalStorage(root)
    _app, key = register_app(storage, APP_ID, currency="USD")
    storage.put_bytes(RATES_CONFIG_KEY, json.dumps(RATES).encode())
    directory = AppDirectory(storage, ttl_seconds=60.0)
    sink: Any = _TableLake(storage) if bulk else ParquetSink(storage)
    answers = []
    for body in bodies:
        answer = handle_post_events(
            APP_ID,
            {"x-api-key": key},
            body,
            directory=directory,
            storage=storage,
            sink=sink,
            received_at=RECEIVED_AT,
        )
        answers.append((answer.status, answer.body))
    return answers, read_lake(storage)


def test_request_bodies_give_the_same_answers_on_both_paths(tmp_path: Path) -> None:
    # GIVEN every case as events of request bodies of up to 200 events (the lines that are JSON,
    # not those nested so deep that a body holding them is: the API refuses such a body whole),
    # and a few bodies the API refuses whole
    lines = [line.data for line in every_case(3) if _is_json(line.data) and line.data.count(b"[") < 400]
    bodies = [
        b'{"events":[' + b",".join(lines[start : start + 200]) + b"]}" for start in range(0, len(lines), 200)
    ]
    bodies += [b'{"events": [1, 2', b'{"events": {}}', b'{"events":[' + b"[" * 600 + b"]" * 600 + b"]}"]
    bodies += [b'{"events":[' + b",".join([lines[0]] * 1001) + b"]}"]
    # ... and bodies whose shape only the exact decoder settles: the events key twice (the last
    # stands), another top-level key, events null, a byte that is not UTF-8 or a lone surrogate
    # in one event beside valid ones
    bodies += [
        b'{"events": [], "events": [' + b",".join(lines[:3]) + b"]}",
        b'{"sdk": {"v": [1.5]}, "events": [' + b",".join(lines[3:6]) + b"]}",
        b'{"events": null}',
        b'{"events": [' + lines[6] + b', {"event_id": "\xff"}]}',
        b'{"events": [' + lines[7] + b', {"event_id": "\\ud800"}]}',
    ]
    # WHEN each is posted through the API's route with the per-event sink and with the bulk one
    per_event, per_event_lake = _post_all(tmp_path / "per-event", bodies, bulk=False)
    bulk, bulk_lake = _post_all(tmp_path / "bulk", bodies, bulk=True)
    # THEN every answer is the same (status, accepted count, each rejection's index, id and
    # reasons; the refused bodies' messages), and so are the rows stored and the quarantine
    assert [status for status, _body in per_event].count(202) == len(bodies) - 6
    assert bulk == per_event
    (rows, quarantine, _files, _dirs), (bulk_rows, bulk_quarantine, _, _) = per_event_lake, bulk_lake
    assert bulk_rows.equals(rows), describe_rows(rows, bulk_rows)
    assert bulk_quarantine == quarantine
    assert rows.num_rows > 100 and len(quarantine) > 100


def _is_json(data: bytes) -> bool:
    """A line that is one JSON value in UTF-8, which an events array can hold."""
    try:
        text = data.decode("utf-8")
        ingestion.decode_json(text)
    except (ValueError, RecursionError):
        return False
    return bool(text.strip())


def test_request_body_events_with_nested_properties_take_the_fast_path(
    tmp_path: Path, slow_path: SlowPath
) -> None:
    # GIVEN a body of valid events whose free-form properties nest lists and objects (integers
    # only), which the typed records do not take but orjson reads
    events = [
        to_line(make_event("minis_visit", {"tags": [1, [2, 3]], "meta": {"k": "v"}}, event_id=f"e-{n}"))
        for n in range(20)
    ]
    body = b'{"events":[' + b",".join(events) + b"]}"
    # WHEN it is posted through the bulk route
    answers, (rows, quarantine, _files, _dirs) = _post_all(tmp_path, [body], bulk=True)
    # THEN every event is stored, none of them by the per-event validator
    assert answers[0][0] == 202 and rows.num_rows == 20 and not quarantine
    assert slow_path.deferred == 0


def test_request_body_deferred_events_are_read_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a body of launches and recharge orders (money: always read exactly, by the per-event
    # validator), and a body with one event holding a lone surrogate, which msgspec refuses
    whole: list[int] = []
    parse = ingestion.parse_request_body

    def counting(body: bytes) -> list[Any]:
        whole.append(len(body))
        return parse(body)

    monkeypatch.setattr(ingestion, "parse_request_body", counting)
    orders = [
        to_line(
            make_event(
                "recharge_order", {"order_id": f"o-{n}", "amount": Decimal(f"{n}.10")}, event_id=f"r-{n}"
            )
        )
        for n in range(5)
    ]
    launches = [to_line(make_event("app_launch", event_id=f"l-{n}")) for n in range(5)]
    body = b'{"events":[' + b",".join(launches + orders) + b"]}"
    surrogate = b'{"events":[' + launches[0] + b', {"event_id": "\\ud800", "amount": 1.5}]}'
    # WHEN both are posted through the bulk route
    answers, (rows, quarantine, _files, _dirs) = _post_all(tmp_path, [body, surrogate], bulk=True)
    # THEN the orders are stored with their exact amounts, read from their own text: the whole
    # body is read again only for the one msgspec refuses (the exact decoder reads it instead)
    assert [status for status, _body in answers] == [202, 202]
    assert rows.num_rows == 11 and len(quarantine) == 1  # l-0 twice: once per request
    amounts = rows.filter(pc.equal(rows.column("event_name"), "recharge_order")).column("amount")
    assert sorted(amounts.to_pylist()) == [Decimal(f"{n}.10") for n in range(5)]
    assert whole == [len(surrogate)]
