"""The SQS message format and packing: sizes within SQS limits, nothing lost, retries of failed entries."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidrama import queue
from minidrama.queue import (
    MAX_BATCH_BYTES,
    MAX_BATCH_ENTRIES,
    MAX_MESSAGE_BYTES,
    EnqueueError,
    EventEncodingError,
    MessageDecodeError,
    SqsSink,
    decode_message,
    encode_row,
    pack_messages,
    plan_send_batches,
)
from tests.rows import make_order, make_row


def _rows_of(messages: list[bytes]) -> list[dict[str, Any]]:
    rows = []
    for body in messages:
        app_id, decoded = decode_message(body)
        assert app_id == "app-1"
        rows.extend(decoded)
    return rows


def test_encoded_rows_decode_to_the_same_typed_rows() -> None:
    # GIVEN launches and orders with exact money, UTC times and non-ASCII text
    rows = [make_row(1, device_model="小米 14 \ufffe"), make_order(2, amount=Decimal("0.000001"))]
    # WHEN they travel through one message
    (message,) = pack_messages("app-1", [encode_row(row) for row in rows])
    # THEN they come back equal, decimals exact and times aware
    assert _rows_of([message]) == rows
    assert message.decode("utf-8")  # SQS needs valid text; U+FFFE is escaped, not sent raw
    assert "\ufffe" not in message.decode("utf-8")


def test_null_columns_are_left_out_on_the_wire() -> None:
    encoded = json.loads(encode_row(make_row(0)))
    assert "amount" not in encoded and "order_id" not in encoded
    assert encoded["event_time"] == "2026-11-28T10:15:00.123000+00:00"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (make_row(0, properties=json.dumps({"blob": "x" * (queue.MAX_EVENT_BYTES + 1)})), "the limit is"),
        (make_row(0, user_id="\ud800"), "not valid Unicode"),
    ],
    ids=["too big", "lone surrogate"],
)
def test_rows_that_cannot_travel_are_refused_with_a_reason(row: dict[str, Any], reason: str) -> None:
    with pytest.raises(EventEncodingError, match=reason):
        encode_row(row)


@pytest.mark.parametrize("count", [1, 9, 10, 11, 1_000, 5_000])
def test_messages_stay_under_the_size_limit_and_keep_every_row_in_order(count: int) -> None:
    # GIVEN many rows
    rows = [make_row(n) for n in range(count)]
    # WHEN packed
    messages = pack_messages("app-1", [encode_row(row) for row in rows])
    # THEN every message fits SQS and all rows are there once, in order
    assert all(len(message) <= MAX_MESSAGE_BYTES for message in messages)
    assert _rows_of(messages) == rows


def test_a_full_request_fills_few_large_messages() -> None:
    rows = [make_row(n, properties=json.dumps({"pad": "p" * 700})) for n in range(1_000)]
    messages = pack_messages("app-1", [encode_row(row) for row in rows])
    # ~1 MB of rows in 256 KiB messages: 4 or 5 of them, all but the last nearly full
    assert 4 <= len(messages) <= 5
    assert all(len(message) > MAX_MESSAGE_BYTES - 2_000 for message in messages[:-1])


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=3_000), max_size=60), limit=st.integers(3_500, 20_000)
)
def test_packing_any_sizes_respects_the_limit_and_loses_nothing(sizes: list[int], limit: int) -> None:
    rows = [make_row(n, properties=json.dumps({"p": "x" * size})) for n, size in enumerate(sizes)]
    messages = pack_messages("app-1", [encode_row(row) for row in rows], max_bytes=limit)
    assert all(len(message) <= limit for message in messages)
    assert _rows_of(messages) == rows


@pytest.mark.parametrize(
    ("sizes", "expected_calls"),
    [
        ([100] * 10, [10]),
        ([100] * 11, [10, 1]),
        ([100] * 25, [10, 10, 5]),
        ([MAX_BATCH_BYTES // 2] * 3, [2, 1]),
        ([MAX_BATCH_BYTES] * 2, [1, 1]),
        ([MAX_BATCH_BYTES // 3 + 1] * 3, [2, 1]),
        ([], []),
    ],
)
def test_send_batches_hold_at_most_ten_entries_and_256_kib(
    sizes: list[int], expected_calls: list[int]
) -> None:
    bodies = [b"x" * size for size in sizes]
    batches = plan_send_batches(bodies)
    assert [len(batch) for batch in batches] == expected_calls
    assert [body for batch in batches for body in batch] == bodies
    assert all(
        len(batch) <= MAX_BATCH_ENTRIES and sum(map(len, batch)) <= MAX_BATCH_BYTES for batch in batches
    )


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        '{"v": 2, "app_id": "a", "events": []}',
        '{"v": 1, "events": []}',
        '{"v": 1, "app_id": "../../etc", "events": []}',
        '{"v": 1, "app_id": "a", "events": {}}',
        '{"v": 1, "app_id": "a", "events": [5]}',
        '{"v": 1, "app_id": "a", "events": [{"event_id": "e"}]}',
        '{"v": 1, "app_id": "a", "events": [{"nope": 1}]}',
        '{"v": 1, "app_id": "a", "events": [{"event_id": "e", "event_name": "x", "event_time": "yesterday",'
        ' "received_at": "2026-11-28T10:00:00+00:00"}]}',
        '{"v": 1, "app_id": "a", "events": [{"event_id": "e", "event_name": "x", "event_time": '
        '"2026-11-28T10:00:00", "received_at": "2026-11-28T10:00:00+00:00"}]}',
        '{"v": 1, "app_id": "a", "events": [{"event_id": "e", "event_name": "x", "event_time": '
        '"2026-11-28T10:00:00+00:00", "received_at": "2026-11-28T10:00:00+00:00", "beans": "5"}]}',
        '{"v": 1, "app_id": "a", "events": [{"event_id": "e", "event_name": "x", "event_time": '
        '"2026-11-28T10:00:00+00:00", "received_at": "2026-11-28T10:00:00+00:00", "amount": "abc"}]}',
        *(
            '{"v": 1, "app_id": "a", "events": [{"event_id": "e", "event_name": "x", "event_time": '
            f'"2026-11-28T10:00:00+00:00", "received_at": "2026-11-28T10:00:00+00:00", {column}}}]}}'
            for column in (
                '"beans": 9223372036854775808',
                '"amount": "1.0000001"',
                '"amount": "100000000000000000000000000000000"',
                '"amount": "NaN"',
                '"user_id": "\\ud800"',
                '"success": 1',
            )
        ),
    ],
)
def test_malformed_messages_are_poison_with_a_reason(body: str) -> None:
    with pytest.raises(MessageDecodeError):
        decode_message(body)


class FakeSqs:
    """Records every SendMessageBatch call; fails the entries a script says, per call."""

    def __init__(self, failures: list[set[int]] | None = None, sender_fault: bool = False) -> None:
        self.failures = failures or []
        self.sender_fault = sender_fault
        self.calls: list[list[dict[str, str]]] = []
        self.delivered: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803
        assert len(Entries) <= MAX_BATCH_ENTRIES
        assert sum(len(entry["MessageBody"].encode()) for entry in Entries) <= MAX_BATCH_BYTES
        failing = self.failures[len(self.calls)] if len(self.calls) < len(self.failures) else set()
        self.calls.append(Entries)
        failed = [
            {
                "Id": entry["Id"],
                "Code": "InternalError",
                "SenderFault": self.sender_fault,
                "Message": "try again",
            }
            for n, entry in enumerate(Entries)
            if n in failing
        ]
        self.delivered.extend(entry["MessageBody"] for n, entry in enumerate(Entries) if n not in failing)
        return {"Successful": [], "Failed": failed}


def test_entries_reported_failed_are_sent_again_until_they_succeed() -> None:
    # GIVEN SQS failing two of the entries of the first call, then one of the retry
    rows = [make_row(n) for n in range(30)]
    client = FakeSqs(failures=[{0, 2}, {1}])
    delays: list[float] = []
    sink = SqsSink(client, "https://queue", sleep=delays.append)
    # WHEN rows packed into small messages are written
    bodies = pack_messages("app-1", [encode_row(row) for row in rows], max_bytes=1_000)
    sink._send(bodies)
    # THEN every message is delivered exactly once, after backing off between tries
    assert sorted(client.delivered) == sorted(body.decode() for body in bodies)
    assert [len(call) for call in client.calls] == [len(bodies), 2, 1]
    assert len(delays) == 2 and delays[1] > delays[0] * 0.5


def test_the_sink_delivers_every_row_of_a_request() -> None:
    client = FakeSqs(failures=[{3}])
    rows = [make_row(n, properties=json.dumps({"pad": "p" * 900})) for n in range(1_000)]
    SqsSink(client, "https://queue", sleep=lambda _: None).write("app-1", rows)
    assert _rows_of([body.encode() for body in client.delivered]) == rows


def test_entries_still_failing_after_the_last_attempt_raise() -> None:
    client = FakeSqs(failures=[{0}] * 5)
    sink = SqsSink(client, "https://queue", max_attempts=5, sleep=lambda _: None)
    with pytest.raises(EnqueueError, match="after 5 attempts"):
        sink.write("app-1", [make_row(0)])
    assert len(client.calls) == 5


def test_sender_faults_are_not_retried() -> None:
    client = FakeSqs(failures=[{0}], sender_fault=True)
    with pytest.raises(EnqueueError, match="refused"):
        SqsSink(client, "https://queue", sleep=lambda _: None).write("app-1", [make_row(0)])
    assert len(client.calls) == 1
