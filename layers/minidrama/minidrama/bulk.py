"""Bulk validation: a whole chunk of events checked column-wise, with the per-event path's outcomes.

:func:`check_bulk` takes a chunk of events (NDJSON lines of ``minidrama ingest``, or the events of
one request to the local server) and returns the accepted rows as one Arrow table of
:data:`~minidrama.writer.EVENTS_SCHEMA` and the rejections, exactly as
:func:`minidrama.validation.validate_events` would decide them. How:

1. **Decode** each line with msgspec into a typed record, which checks the types as it reads,
   in C: a launch, session end, redeem or recharge order holding its typed properties alone,
   each of its type (:class:`_Typed`; a recharge order's amount is kept as its text, read
   exactly as a Decimal, and the order's money checked and converted by the per-event
   validator's own rules, :func:`minidrama.validation.recharge_order_columns`), else any event
   whose base fields are strings and ``properties`` a flat object of strings, integers,
   booleans and nulls (:class:`_Plain`). A line of another shape is
   decoded by orjson (several times faster than ``json``); a line neither can decode, and an
   event holding a non-integral number anywhere, is *deferred*: money and other decimals must be
   read exactly (``parse_float=Decimal``), and a line that is not JSON or not UTF-8 gets the
   per-event path's own message.
2. **Plain shapes** (a Python pass that only looks at types): every field the string it must be,
   integers that are ints in range, ``properties`` an object without decimals. Anything else is
   deferred. A ``recharge_order`` of another shape (extra properties, say) is always deferred.
3. **Column-wise rules** (Arrow compute over the chunk): identifier and text lengths, the event
   name pattern, ASCII ``os`` lower-cased, ``region`` in the ISO 3166 list, ``event_time`` parsed
   as RFC 3339 (a strict shape: ``T``, 1-6 fraction digits, ``Z`` or ``±HH:MM``) and not more than
   24 h after receipt, ``session_id`` where the event name needs it. A row that fails any is
   deferred, not rejected.
4. **Deferred events** go through the per-event validator (:mod:`minidrama.validation`) after an
   exact decode, which accepts them or rejects them with its reasons.

The fast path only ever *accepts*, and only what the per-event validator would accept with the
same values; every rejection, and its reasons, is the per-event validator's. The differential test
(``tests/functional/test_ingest_bulk.py``) holds the two paths to the same rows, rejections and
quarantine lines on random events of every invalid kind.

Not for the ingest function: it ships no pyarrow, and at a request's at most 1,000 events the
bulk path's fixed costs leave it little ahead (one process of the local server measures 1.51x
the per-event path, README Performance).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from itertools import chain
from operator import itemgetter
from typing import Annotated, Any

import msgspec
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from msgspec.structs import astuple

from minidrama.config import Rates
from minidrama.ingestion import MAX_NESTING, too_deep
from minidrama.iso_codes import COUNTRY_CODES
from minidrama.queue import EventEncodingError, encode_row
from minidrama.schema import EVENT_COLUMNS, KNOWN_PROPERTIES
from minidrama.validation import (
    EVENT_NAME_PATTERN,
    MAX_FUTURE,
    MAX_ID_LENGTH,
    MAX_INT,
    MAX_OS_LENGTH,
    MAX_TEXT_LENGTH,
    Rejection,
    recharge_order_columns,
    validate_events,
)
from minidrama.writer import EVENTS_SCHEMA, rows_to_table

__all__ = [
    "BulkChecked",
    "decode_body",
    "decode_exactly",
    "decode_lines",
    "check_bulk",
    "SAFE_PROPERTIES_LENGTH",
]

# A row whose stored properties are at most this long is always small enough for the queue's
# 192 KiB per event (every character at most 6 bytes once escaped, plus 128-character fields):
# longer ones are checked with the queue's encoder like the per-event path does.
SAFE_PROPERTIES_LENGTH = 16_000

_TIME_SHAPE = (
    r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)
_NAME_SHAPE = "^" + EVENT_NAME_PATTERN.pattern + "$"
assert re.fullmatch(r"\[a-z\]\[a-z0-9_\]\{0,63\}", EVENT_NAME_PATTERN.pattern), "the name rule changed"
_REGIONS = pa.array(sorted(COUNTRY_CODES), pa.string())
_TIMESTAMP = pa.timestamp("us", tz="UTC")
_COLUMN_NAMES = [name for name, _ in EVENT_COLUMNS]

# Typed properties, per event name, the fast path fills.
_LAUNCH_TEXTS = ("device_brand", "device_model", "tiktok_version", "gender", "age_group")
_TYPED = {name: frozenset(keys) for name, keys in KNOWN_PROPERTIES.items()}
_SESSION_NAMES = pa.array(["app_launch", "session_end"], pa.string())


@dataclass
class BulkChecked:
    """A chunk's outcome: the accepted rows (in no particular order: the writer sorts each
    partition), the rejections (``index`` = position in the chunk, in order), and how many accepted
    events were not stored because their ``event_id`` came earlier in the call."""

    table: pa.Table
    rejected: list[Rejection]
    repeated: int = 0
    # accepted by the rules but too big (or not Unicode) for the queue: rejected, unless a caller
    # that splits a call into chunks finds the id stored by an earlier one (then it is a repeat)
    refused: list[Rejection] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # of the table's rows in the chunk


class _Plain(msgspec.Struct, gc=False):
    """An event as the fast path takes most of them, its types checked by msgspec as it decodes:
    a line of this shape needs no type pass over its fields. Other top-level keys are ignored, as
    the per-event validator ignores them; a repeated key's last value stands, as in ``json``."""

    event_id: str
    event_name: str
    event_time: str
    user_id: str
    os: str
    region: str
    session_id: str | None = None
    properties: dict[str, str | int | bool | None] | None = None


_PLAIN_LINE = msgspec.json.Decoder(_Plain)

_UInt = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT)]


class _Typed(msgspec.Struct, gc=False, kw_only=True, tag_field="event_name"):
    """An event of a name with typed properties, holding those alone, each of its type (msgspec
    checks them, and refuses a repeated ``event_name`` of another value): its typed columns are
    its properties in the order of :data:`_GROUP_COLUMNS`, and its stored properties ``{}``."""

    event_id: str
    event_time: str
    user_id: str
    os: str
    region: str
    session_id: str | None = None


class _LaunchProperties(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    entry_point: str
    success: bool = True  # (an explicit null takes the plain path, which reads it as true too)
    launch_ms: _UInt | None = None
    device_brand: str | None = None
    device_model: str | None = None
    tiktok_version: str | None = None
    gender: str | None = None
    age_group: str | None = None


class _SessionEndProperties(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    duration_ms: _UInt


class _RedeemProperties(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    order_id: str
    product_id: str
    beans: _UInt


class _RechargeProperties(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    order_id: str
    amount: msgspec.Raw  # its text: a number is read exactly (Decimal), anything else deferred
    currency: str
    beans: _UInt | None = None
    product_id: str | None = None


class _Launch(_Typed, tag="app_launch"):
    properties: _LaunchProperties


class _SessionEnd(_Typed, tag="session_end"):
    properties: _SessionEndProperties


class _Redeem(_Typed, tag="redeem_order"):
    properties: _RedeemProperties


class _Recharge(_Typed, tag="recharge_order"):
    properties: _RechargeProperties


_TYPED_LINE = msgspec.json.Decoder(_Launch | _SessionEnd | _Redeem | _Recharge)
_TYPED_NAMES: dict[type, str] = {
    kind: str(kind.__struct_config__.tag) for kind in (_Launch, _SessionEnd, _Redeem, _Recharge)
}
_NUMBER_START = frozenset(b"-0123456789")  # of a JSON value's text: a number


def _money(order: _RechargeProperties, currency: str, rates: Rates) -> tuple[Any, ...] | None:
    """A typed recharge order's columns (order_id, amount, original_amount, currency, beans,
    product_id) as the per-event validator gives them, its amount read exactly from its text and
    converted by the same rules (:func:`minidrama.validation.recharge_order_columns`); None to
    defer it (an amount that is not a number, any rule it breaks)."""
    text = bytes(order.amount)
    if not text or text[0] not in _NUMBER_START:
        return None
    properties = {
        "order_id": order.order_id,
        "amount": Decimal(text.decode("ascii")),  # a JSON number's text is ASCII
        "currency": order.currency,
        "beans": order.beans,
        "product_id": order.product_id,
    }
    return recharge_order_columns(properties, currency, rates)


_EXACT_LINE = msgspec.json.Decoder(float_hook=Decimal)


def decode_exactly(line: bytes | memoryview) -> Any:
    """What the exact decoder (:func:`minidrama.ingestion.decode_json`) reads from a line known not
    to nest too deeply, several times faster: msgspec gives the same values (a non-integral number
    as the Decimal of its text, a repeated key's last value in its first place). Raises
    ``ValueError`` where msgspec refuses the line (not JSON, not UTF-8, a lone surrogate, NaN, an
    integer of thousands of digits): the exact decoder then says why, or reads it."""
    try:
        return _EXACT_LINE.decode(line)
    except msgspec.DecodeError as error:
        raise ValueError(str(error)) from None


class _Body(msgspec.Struct):
    """A request body as the fast path reads it: each event's JSON text, decoded one by one."""

    events: list[msgspec.Raw]


_BODY = msgspec.json.Decoder(_Body)


def decode_body(body: bytes) -> tuple[list[Any], list[memoryview]] | None:
    """A request body's events decoded as :func:`decode_lines` decodes lines, with each event's
    JSON text (for :func:`decode_exactly`), or None when the body is not an object with an
    ``events`` array (the exact decoder says what it is). The caller has checked the body's
    nesting (:func:`minidrama.ingestion.too_deep`)."""
    try:
        events = _BODY.decode(body).events
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    # (orjson and msgspec read a memoryview of each event's text, not the Raw itself)
    texts = [memoryview(event) for event in events]
    return decode_lines(texts, shallow=True), texts


def decode_lines(lines: Sequence[Any], *, shallow: bool = False) -> list[Any]:
    """Each line decoded: a :class:`_Typed` or :class:`_Plain` record where it has that shape,
    else what orjson reads, or None where it must take the exact path (not JSON, not UTF-8, nested
    too deeply, a number beyond 64 bits); a non-integral number is found later. ``shallow``: the
    lines are known not to nest too deeply."""
    decoded: list[Any] = []
    typed, plain = _TYPED_LINE.decode, _PLAIN_LINE.decode
    not_plain = (msgspec.ValidationError, msgspec.DecodeError)
    loads, error = orjson.loads, orjson.JSONDecodeError
    for line in lines:
        # Nested deeper than the exact decoder's limit: it says so (orjson reads 1,024 levels, and
        # the typed decoders skip an ignored top-level key unread). A line shorter than the limit
        # cannot nest past it.
        if not shallow and len(line) > MAX_NESTING and too_deep(line):
            decoded.append(None)
            continue
        try:
            decoded.append(typed(line))
            continue
        except not_plain:
            pass
        try:
            decoded.append(plain(line))
            continue
        except not_plain:
            pass
        try:
            decoded.append(loads(line))
        except error:
            decoded.append(None)
    return decoded


# An event's free-form properties start 3 levels down (the event, properties, the value): deeper
# values are for the exact decoder, which has a nesting limit (minidrama.ingestion.MAX_NESTING).
_PLAIN_DEPTH = MAX_NESTING - 3


def _no_decimals(value: Any, depth: int = 0) -> bool:
    """No non-integral number in a value nested at most :data:`_PLAIN_DEPTH` levels."""
    kind = type(value)
    if kind is float or kind is Decimal or depth > _PLAIN_DEPTH:  # Decimal: an exactly decoded event
        return False
    if kind is dict:
        return all(_no_decimals(item, depth + 1) for item in value.values())
    if kind is list:
        return all(_no_decimals(item, depth + 1) for item in value)
    return True


def _no_deep_decimals(value: Any) -> bool:
    """No decimals in a nested value, not too deep; False (defer it) otherwise."""
    try:
        return _no_decimals(value)
    except RecursionError:
        return False


def _uint(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_INT


_BASE = ("event_id", "event_name", "event_time", "user_id", "session_id", "os", "region")
# The typed columns the fast path fills, per event name (others: none).
_GROUP_COLUMNS: dict[str | None, tuple[str, ...]] = {
    None: (),
    "app_launch": ("entry_point", "success", "launch_ms", *_LAUNCH_TEXTS),
    "session_end": ("duration_ms",),
    "redeem_order": ("order_id", "product_id", "beans"),
    "recharge_order": ("order_id", "amount", "original_amount", "currency", "beans", "product_id"),
}


@dataclass
class _Group:
    """The fast path's candidates of one kind of event: positions, the base fields and the typed
    properties as tuples (transposed into columns at C speed), and the free-form properties."""

    columns: tuple[str, ...]
    positions: list[int] = field(default_factory=list)
    base: list[tuple[Any, ...]] = field(default_factory=list)
    typed: list[tuple[Any, ...]] = field(default_factory=list)
    extras: list[dict[str, Any]] = field(default_factory=list)


def _typed(name: str, properties: dict[str, Any]) -> tuple[Any, ...] | None:
    """The typed properties of a known event name, when each has its type; None to defer."""
    get = properties.get
    if name == "app_launch":
        entry_point, success, launch_ms = get("entry_point"), get("success"), get("launch_ms")
        if type(entry_point) is not str or not (success is None or success is True or success is False):
            return None
        if launch_ms is not None and not _uint(launch_ms):
            return None
        texts = tuple(get(text) for text in _LAUNCH_TEXTS)
        if any(text is not None and type(text) is not str for text in texts):
            return None
        return (entry_point, True if success is None else success, launch_ms, *texts)
    if name == "session_end":
        duration_ms = get("duration_ms")
        return (duration_ms,) if _uint(duration_ms) else None
    order_id, product_id, beans = get("order_id"), get("product_id"), get("beans")  # redeem_order
    if type(order_id) is str and type(product_id) is str and _uint(beans):
        return (order_id, product_id, beans)
    return None


_ALL_TEXT = (str,) * len(_BASE)  # the base fields' types, session_id given ...
_NO_SESSION = (str, str, str, str, type(None), str, str)  # ... or not
_SCALARS = frozenset((str, int, bool, type(None)))


def _sort_plain(
    events: Sequence[Any], currency: str, rates: Rates
) -> tuple[dict[str | None, _Group], list[int]]:
    """The events whose every value has the type its rule needs, by kind; the positions of the
    others (deferred to the per-event path)."""
    groups = {name: _Group(columns) for name, columns in _GROUP_COLUMNS.items()}
    generic = groups[None]
    group_of: dict[str, _Group | None] = {name: groups.get(name) for name in _TYPED}
    # a recharge order takes the fast path only as a typed record, its amount's text read exactly
    group_of["recharge_order"] = None
    deferred: list[int] = []
    typed_groups = {kind: groups[name] for kind, name in _TYPED_NAMES.items()}
    for position, event in enumerate(events):
        kind = type(event)
        group = typed_groups.get(kind)
        if group is not None:  # its typed properties checked, and no others
            typed_columns = (
                _money(event.properties, currency, rates) if kind is _Recharge else astuple(event.properties)
            )
            if typed_columns is None:
                deferred.append(position)
                continue
            group.positions.append(position)
            group.base.append(
                (
                    event.event_id,
                    _TYPED_NAMES[kind],
                    event.event_time,
                    event.user_id,
                    event.session_id,
                    event.os,
                    event.region,
                )
            )
            group.typed.append(typed_columns)
            group.extras.append({})
            continue
        if kind is _Plain:  # its types are checked: strings, and a flat object of scalars
            base = (
                event.event_id,
                event.event_name,
                event.event_time,
                event.user_id,
                event.session_id,
                event.os,
                event.region,
            )
            properties = event.properties or {}
            scalars = True
        elif kind is dict:
            get = event.get
            base = (
                get("event_id"),
                get("event_name"),
                get("event_time"),
                get("user_id"),
                get("session_id"),
                get("os"),
                get("region"),
            )
            kinds = tuple(map(type, base))
            properties = get("properties")
            if properties is None:
                properties = {}
            if (kinds != _ALL_TEXT and kinds != _NO_SESSION) or type(properties) is not dict:
                deferred.append(position)
                continue
            scalars = False
        else:
            deferred.append(position)
            continue
        name = base[1]
        group = group_of.get(name, generic)
        if group is None:
            deferred.append(position)
            continue
        typed: tuple[Any, ...] | None = ()
        if group is generic:
            extra = properties
        else:
            typed = _typed(name, properties)
            if typed is None:
                deferred.append(position)
                continue
            known = _TYPED[name]
            extra = {key: value for key, value in properties.items() if key not in known}
        if extra and not (scalars or set(map(type, extra.values())) <= _SCALARS or _no_deep_decimals(extra)):
            deferred.append(position)
            continue
        group.positions.append(position)
        group.base.append(base)
        group.typed.append(typed or ())
        group.extras.append(extra)
    return groups, deferred


def _length_between(values: pa.Array, low: int, high: int) -> pa.Array:
    lengths = pc.utf8_length(values)
    return pc.and_(pc.greater_equal(lengths, low), pc.less_equal(lengths, high))


def _optional_length(values: pa.Array, low: int, high: int) -> pa.Array:
    return pc.or_kleene(pc.is_null(values), _length_between(values, low, high))


def _parse_times(times: pa.Array) -> pa.Array:
    """Event times as UTC timestamps where they have the strict RFC 3339 shape, else null."""
    shaped = pc.match_substring_regex(times, _TIME_SHAPE)
    candidates = pc.if_else(shaped, times, pa.scalar(None, pa.string()))
    try:
        return candidates.cast(_TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # an impossible date (Feb 30) in the chunk: parse one by one, deferring the ones that fail
        return pa.array([_one_time(value) for value in candidates.to_pylist()], _TIMESTAMP)


def _one_time(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return pa.scalar(value).cast(_TIMESTAMP).as_py()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError, ValueError):
        return None  # the per-event path says what is wrong with it


def _candidates_table(groups: list[_Group], received_at: datetime) -> tuple[pa.Table, pa.Array]:
    """The groups' candidates, group after group, as one typed table (properties still null), and
    the mask of those every column-wise rule accepts (one pass of Arrow kernels for all kinds: a
    typed column is null in the rows of the kinds without it)."""
    count = sum(len(group.positions) for group in groups)
    given: dict[str, list[Any]] = {}
    for index, name in enumerate(_BASE):
        # column by column, at C speed (zip(*rows) of many rows is slower)
        given[name] = list(chain.from_iterable(map(itemgetter(index), group.base) for group in groups))
    arrays: dict[str, pa.Array] = {}
    typed = {name for group in groups for name in group.columns}
    for name in typed:
        # a typed column is converted group by group, only where the kind has it: most of its
        # rows are other kinds' nulls, which need no conversion
        column_type = EVENTS_SCHEMA.field(name).type
        arrays[name] = pa.concat_arrays(
            [
                pa.array(list(map(itemgetter(group.columns.index(name)), group.typed)), column_type)
                if name in group.columns
                else pa.nulls(len(group.positions), column_type)
                for group in groups
            ]
        )
    for name, _kind in EVENT_COLUMNS:
        if name in arrays:
            continue
        # event_time is text until the rules parse it
        column_type = pa.string() if name == "event_time" else EVENTS_SCHEMA.field(name).type
        arrays[name] = pa.array(given[name], column_type) if name in given else pa.nulls(count, column_type)
    ok = pc.match_substring_regex(arrays["event_name"], _NAME_SHAPE)
    for name in ("event_id", "user_id"):
        ok = pc.and_(ok, _length_between(arrays[name], 1, MAX_ID_LENGTH))
    needed = pc.is_in(arrays["event_name"], _SESSION_NAMES)
    sessions = arrays["session_id"]
    ok = pc.and_(ok, _optional_length(sessions, 1, MAX_ID_LENGTH))
    ok = pc.and_(ok, pc.or_(pc.invert(needed), pc.is_valid(sessions)))
    # null only in the rows of the kinds without them: the type pass let no null through for a
    # required one (entry_point of a launch, order_id and product_id of a redeem order)
    for name in ("entry_point", "order_id", "product_id"):
        if name in typed:
            ok = pc.and_(ok, _optional_length(arrays[name], 1, MAX_ID_LENGTH))
    for name in _LAUNCH_TEXTS:
        if name in typed:
            ok = pc.and_(ok, _optional_length(arrays[name], 0, MAX_TEXT_LENGTH))
    os_values = arrays["os"]
    ok = pc.and_(ok, pc.and_(pc.string_is_ascii(os_values), _length_between(os_values, 1, MAX_OS_LENGTH)))
    arrays["os"] = pc.ascii_lower(os_values)
    regions = pc.ascii_upper(arrays["region"])
    ok = pc.and_(ok, pc.and_(pc.string_is_ascii(arrays["region"]), pc.is_in(regions, _REGIONS)))
    arrays["region"] = regions
    event_time = _parse_times(arrays["event_time"])
    latest = pa.scalar(received_at + MAX_FUTURE, _TIMESTAMP)
    ok = pc.and_(ok, pc.fill_null(pc.less_equal(event_time, latest), False))
    arrays["event_time"] = event_time
    arrays["received_at"] = pa.repeat(pa.scalar(received_at, _TIMESTAMP), count)
    table = pa.table([arrays[name] for name, _kind in EVENT_COLUMNS], schema=EVENTS_SCHEMA)
    return table, pc.fill_null(ok, False)


def _stored_properties(extra: dict[str, Any]) -> str | None:
    """The free-form properties as the per-event path stores them (orjson writes the same compact,
    key-sorted JSON as the stdlib encoder for values without decimals), or None when they are too
    long for the fast path."""
    if not extra:
        return "{}"
    try:
        text = orjson.dumps(extra, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: the per-event path decides
        return None
    return text if len(text) <= SAFE_PROPERTIES_LENGTH else None


def check_bulk(
    events: Sequence[Any],
    *,
    exact: Callable[[list[int]], list[Any]],
    received_at: datetime,
    currency: str,
    rates: Rates,
    seen: set[str],
) -> BulkChecked:
    """Validate a chunk: ``events`` as :func:`decode_lines` decoded them (None: deferred), and
    ``exact(positions)`` the exactly decoded events at those positions, for the per-event path.

    ``seen`` holds the event ids accepted earlier in the same call (updated here): an accepted
    event whose id is in it counts as accepted and is not stored again (the first copy stands),
    as the per-event path does within its batch.
    """
    groups, deferred = _sort_plain(events, currency, rates)
    present = [group for group in groups.values() if group.positions]
    candidates, ok = _candidates_table(present, received_at)
    flags = ok.to_pylist()
    fast: list[_Kept] = []
    offset = 0
    for group in present:
        count = len(group.positions)
        table = candidates.slice(offset, count)
        texts = [
            _stored_properties(extra) if accepted else None
            for accepted, extra in zip(flags[offset : offset + count], group.extras, strict=True)
        ]
        offset += count
        rows = [index for index, text in enumerate(texts) if text is not None]
        deferred += [position for position, text in zip(group.positions, texts, strict=True) if text is None]
        fast.append(_Kept(table, group, rows, texts))
    deferred.sort()
    exact_events = exact(deferred)
    slow = validate_events(exact_events, received_at=received_at, currency=currency, rates=rates)
    rejected = [replace(rejection, index=deferred[rejection.index]) for rejection in slow.rejected]
    rejected_at = {rejection.index for rejection in slow.rejected}
    slow_positions = [position for index, position in enumerate(deferred) if index not in rejected_at]
    slow_rows = dict(zip(slow_positions, slow.accepted, strict=True))
    raw_of = dict(zip(deferred, exact_events, strict=True))
    refused: list[Rejection] = []
    ids = [event_id for kept in fast for event_id in kept.ids] + [
        row["event_id"] for row in slow_rows.values()
    ]

    def travels(position: int) -> bool:
        """A deferred row within the queue's limits; one that is not is refused, as the per-event
        path refuses it (and, refused, does not count as the first copy of its id)."""
        row = slow_rows[position]
        if len(row["properties"]) <= SAFE_PROPERTIES_LENGTH:
            return True  # validated fields are valid Unicode and short: within the queue's limit
        try:
            encode_row(row)
        except EventEncodingError as error:
            refused.append(Rejection(position, row["event_id"], [f"event: {error}"], raw_of[position]))
            return False
        return True

    if len(set(ids)) == len(ids) and seen.isdisjoint(ids):  # no event id twice: every candidate stands
        repeated, kept_positions = 0, [position for position in sorted(slow_rows) if travels(position)]
    else:
        repeated, kept_positions = _first_copies(fast, slow_rows, seen, travels)
    kept_slow = [slow_rows[position] for position in kept_positions]
    seen.update(event_id for kept in fast for event_id in kept.ids)
    seen.update(row["event_id"] for row in kept_slow)
    parts = [kept.accepted() for kept in fast if kept.rows]
    positions = [position for kept in fast if kept.rows for position in kept.positions]
    if kept_slow:
        parts.append(rows_to_table(kept_slow, sort=False))
        positions += kept_positions
    accepted = pa.concat_tables(parts) if parts else EVENTS_SCHEMA.empty_table()
    rejected.sort(key=lambda rejection: rejection.index)
    return BulkChecked(accepted, rejected, repeated, refused, positions)


class _Kept:
    """The rows of one group's table that the fast path accepts, with their stored properties."""

    def __init__(self, table: pa.Table, group: _Group, rows: list[int], texts: list[str | None]) -> None:
        self.table = table
        self.rows = rows  # of the table
        self.positions = [group.positions[index] for index in rows]
        self.properties: list[str] = [texts[index] or "" for index in rows]
        self.ids: list[str] = [group.base[index][0] for index in rows]

    def drop(self, keep: list[bool]) -> None:
        self.rows = [value for value, kept in zip(self.rows, keep, strict=True) if kept]
        self.positions = [value for value, kept in zip(self.positions, keep, strict=True) if kept]
        self.properties = [value for value, kept in zip(self.properties, keep, strict=True) if kept]
        self.ids = [value for value, kept in zip(self.ids, keep, strict=True) if kept]

    def accepted(self) -> pa.Table:
        rows = self.table if len(self.rows) == self.table.num_rows else self.table.take(pa.array(self.rows))
        column = _COLUMN_NAMES.index("properties")
        return rows.set_column(
            column, EVENTS_SCHEMA.field("properties"), pa.array(self.properties, pa.string())
        )


def _first_copies(
    fast: list[_Kept], slow_rows: dict[int, dict[str, Any]], seen: set[str], travels: Callable[[int], bool]
) -> tuple[int, list[int]]:
    """In input order, keep the first accepted copy of each event id not in ``seen``, removing the
    later ones from ``fast``; returns how many were removed and the deferred rows kept (each
    checked by ``travels`` when it would be a first copy, as the per-event path checks it)."""
    order = sorted(
        [
            (position, number, slot)
            for number, kept in enumerate(fast)
            for slot, position in enumerate(kept.positions)
        ]
        + [(position, -1, -1) for position in slow_rows]
    )
    keep: list[list[bool]] = [[True] * len(kept.rows) for kept in fast]
    firsts = set(seen)
    repeated = 0
    kept_slow: list[int] = []
    for position, number, slot in order:
        event_id = slow_rows[position]["event_id"] if number < 0 else fast[number].ids[slot]
        if event_id in firsts:
            repeated += 1
            if number >= 0:
                keep[number][slot] = False
            continue
        if number < 0:
            if not travels(position):
                continue
            kept_slow.append(position)
        firsts.add(event_id)
    for kept, flags in zip(fast, keep, strict=True):
        kept.drop(flags)
    return repeated, kept_slow
