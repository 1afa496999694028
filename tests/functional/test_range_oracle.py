"""Range documents from the stored facts equal the independent reference (tests/oracle.py).

The random realistic event sets of the daily differential test (~35 days, four time zones,
re-sent events and orders, failed launches, DST) go into a fresh lake; every day is computed and
``query_range`` is compared value by value with ``reference_range_document`` on random ranges: one
day, a week across a month end, and the whole history. Then late events arrive (some of the
events of earlier days, held back), every day is recomputed, and the ranges are compared again.
``MINIDRAMA_ORACLE_EXAMPLES`` raises the number of examples when hunting for disagreements.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from datetime import date, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minidrama.config import AppConfig
from minidrama.lake import LocalStorage
from minidrama.metrics import compute_days
from tests.functional.test_metrics_oracle import ALL_DAYS, FIRST_DAY, LAST_DAY, first_difference, scenarios
from tests.metrics_support import ingest, query, without_generated_at
from tests.oracle import reference_range_document

MONTH_END_WEEK = (date(2026, 10, 28), date(2026, 11, 3))  # Wednesday to Tuesday, across Oct 31


@st.composite
def ranges(draw: st.DrawFn) -> list[tuple[date, date]]:
    day = draw(st.sampled_from(ALL_DAYS))
    first = draw(st.sampled_from(ALL_DAYS[:-1]))
    last = draw(st.sampled_from([d for d in ALL_DAYS if d > first]))
    return [(day, day), MONTH_END_WEEK, (FIRST_DAY, LAST_DAY), (first, last)]


def _compare(
    lake: LocalStorage, app: AppConfig, events: list, spans: list[tuple[date, date]], when: str
) -> None:
    for first, last in spans:
        stored = without_generated_at(query(lake, first, last, app))
        expected = reference_range_document(events, first, last, app.timezone, app.currency)
        difference = first_difference(expected, stored)
        assert difference is None, f"{when}, {first}..{last} ({app.timezone}): {difference}"


@settings(
    max_examples=int(os.environ.get("MINIDRAMA_ORACLE_EXAMPLES", "4")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenario=scenarios(), spans=ranges(), data=st.data())
def test_range_documents_equal_the_reference_before_and_after_late_events(scenario, spans, data):
    # GIVEN random realistic events of ~35 days, some of the earlier days' events held back
    events, zone_name, currency, _days, _one_call = scenario
    app = AppConfig("app", timezone=zone_name, currency=currency)
    cutoff = LAST_DAY - timedelta(days=data.draw(st.integers(min_value=3, max_value=20)))
    held_back = {
        index
        for index, body in enumerate(events)
        if body["event_time"][:10] <= cutoff.isoformat() and data.draw(st.integers(0, 5)) == 0
    }
    on_time = [body for index, body in enumerate(events) if index not in held_back]
    late = [body for index, body in enumerate(events) if index in held_back]
    root = Path(tempfile.mkdtemp(prefix="range-oracle-"))
    try:
        lake = LocalStorage(root)
        ingest(lake, copy.deepcopy(on_time), app)

        # WHEN every day is computed, THEN each range equals the reference over what arrived
        compute_days(lake, app, ALL_DAYS)
        _compare(lake, app, on_time, spans, "before the late events")

        # WHEN the late events arrive and every day is recomputed, THEN over everything
        if late:
            ingest(lake, copy.deepcopy(late), app)
            compute_days(lake, app, ALL_DAYS)
            _compare(lake, app, on_time + late, spans, "after the late events")
    finally:
        shutil.rmtree(root, ignore_errors=True)
