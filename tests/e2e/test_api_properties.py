"""Random request bodies over real HTTP: never a 5xx, and every accepted event is in the Parquet written."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from minidrama.config import register_app
from minidrama.lake import LocalStorage
from minidrama.schema import FUNNEL_PAGE_VIEWS, KNOWN_EVENT_NAMES
from minidrama.server import serve_in_background

APP = "prop-app"

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
identifiers = st.text(min_size=1, max_size=24) | json_scalars
offsets = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])
event_times = (
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=offsets).map(
        lambda moment: moment.isoformat()
    )
    | st.text(max_size=30)
    | json_scalars
)
properties = st.dictionaries(
    st.sampled_from(
        ["entry_point", "success", "launch_ms", "duration_ms", "order_id", "amount", "currency", "beans"]
        + ["product_id", "device_brand", "gender", "note"]
    ),
    st.sampled_from(["feed", "o-1", "USD", "eur", "JPY", "XXX"])
    | st.integers(min_value=-5, max_value=10**6)
    | st.decimals(min_value=-10, max_value=10**6, allow_nan=False, places=2).map(float)
    | json_values,
    max_size=6,
)
events = st.fixed_dictionaries(
    {
        "event_id": identifiers,
        "event_name": st.sampled_from(sorted(KNOWN_EVENT_NAMES) + ["custom_tap", "Not A Name"])
        | json_scalars,
        "event_time": event_times,
        "user_id": identifiers,
        "os": st.sampled_from(["ios", "Android", "HarmonyOS"]) | json_scalars,
        "region": st.sampled_from(["US", "br", "SG", "XK", "USA"]) | json_scalars,
    },
    optional={"session_id": identifiers, "properties": properties | json_values, "extra": json_values},
)
# Valid events of every known kind (and a custom one), so that many batches accept something.
_PROPERTIES_BY_NAME: dict[str, Any] = {
    "app_launch": st.fixed_dictionaries({"entry_point": st.sampled_from(["feed", "search"])}),
    "session_end": st.fixed_dictionaries({"duration_ms": st.integers(0, 10**7)}),
    "recharge_order": st.fixed_dictionaries(
        {
            "order_id": st.text(min_size=1, max_size=8),
            "amount": st.decimals(min_value="0.01", max_value=1000, places=2).map(float),
            "currency": st.just("USD"),
        }
    ),
    "redeem_order": st.fixed_dictionaries(
        {"order_id": st.just("r"), "product_id": st.just("ep-1"), "beans": st.integers(0, 500)}
    ),
    "minis_visit": st.just({}),
    "custom_tap": st.dictionaries(st.text(max_size=5), json_values, max_size=3),
}
valid_events = st.sampled_from(sorted(_PROPERTIES_BY_NAME)).flatmap(
    lambda name: st.fixed_dictionaries(
        {
            "event_id": st.text(min_size=1, max_size=24),
            "event_name": st.just(name),
            "event_time": st.datetimes(
                min_value=datetime(2020, 1, 1), max_value=datetime(2026, 11, 28), timezones=offsets
            ).map(lambda moment: moment.isoformat()),
            "user_id": st.text(min_size=1, max_size=24),
            "session_id": st.text(min_size=1, max_size=24),
            "os": st.sampled_from(["ios", "Android"]),
            "region": st.sampled_from(["US", "br"]),
            "properties": _PROPERTIES_BY_NAME[name],
        }
    )
)
bodies = (
    st.lists(valid_events | events | json_values, max_size=12).map(
        lambda items: json.dumps({"events": items}).encode()
    )
    | json_values.map(lambda value: json.dumps(value).encode())
    | st.binary(max_size=40)
)

VALID = {
    "event_id": "page-1",
    "event_name": FUNNEL_PAGE_VIEWS[0],
    "event_time": "2026-11-28T10:00:00Z",
    "user_id": "u",
    "os": "ios",
    "region": "US",
}


class Endpoint:
    def __init__(self, lake: LocalStorage, url: str, key: str) -> None:
        self.lake, self.url, self.key = lake, url, key

    def post(self, body: bytes) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{self.url}/v1/apps/{APP}/events", data=body, headers={"x-api-key": self.key}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def files(self) -> set[str]:
        return {info.key for info in self.lake.list(f"events/app_id={APP}/")}


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    lake = LocalStorage(tmp_path_factory.mktemp("properties") / "lake")
    _app, key = register_app(lake, APP)
    with serve_in_background(lake) as url:
        yield Endpoint(lake, url, key)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
@example(body=json.dumps({"events": [VALID, dict(VALID, event_id="page-2"), {}]}).encode())
def test_random_bodies_never_fail_the_server_and_accepted_events_are_stored(
    endpoint: Endpoint, body: bytes
) -> None:
    before = endpoint.files()
    status, answer = endpoint.post(body)
    assert status in {202, 400}, answer
    new_files = endpoint.files() - before
    if status != 202:
        assert "message" in answer and not new_files
        return
    event(f"events accepted: {'some' if answer['accepted'] else 'none'}")
    sent = json.loads(body)["events"]
    rejected = {item["index"] for item in answer["rejected"]}
    assert answer["accepted"] + len(rejected) == len(sent)
    accepted_ids = {event["event_id"] for index, event in enumerate(sent) if index not in rejected}
    stored_ids = Counter(
        row["event_id"] for key in new_files for row in pq.read_table(endpoint.lake.path(key)).to_pylist()
    )
    # every accepted event_id is stored, once: a repeat within the request is the same event
    assert set(stored_ids) == accepted_ids
    assert all(count == 1 for count in stored_ids.values())
