"""Span rollups (minidrama.metrics.spans): a range read through them is the range read day by day.

The daily computation folds the users and entry points of aligned blocks of days into spans; a
range covered by spans must give exactly the document it gives from every day's facts, a span
whose days changed since it was built must not be read, and a damaged span file is an error.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minidrama.config import AppConfig
from minidrama.lake import LocalStorage
from minidrama.metrics import compute_days, facts, spans
from minidrama.metrics.engine import MetricsSession
from minidrama.metrics.exceptions import DamagedFacts
from minidrama.metrics.ranges import query_range
from tests.functional.test_metrics_properties import USERS
from tests.metrics_support import event, ingest, without_generated_at

APP = AppConfig("app")
# 2026-11-03 is day 20,760 since 1970-01-01, a multiple of 8: it starts spans of 2, 4 and 8 days
FIRST_DAY = date(2026, 11, 2)
DAYS = [FIRST_DAY + timedelta(days=n) for n in range(11)]


@st.composite
def events_over_days(draw: st.DrawFn) -> list[dict]:
    """Launches (some failed, some without attributes), session ends of sessions across midnight,
    and orders, of a few users over DAYS."""
    bodies = []
    for n in range(draw(st.integers(min_value=1, max_value=60))):
        day = draw(st.sampled_from(DAYS))
        minute = draw(st.integers(min_value=0, max_value=24 * 60 - 1))
        time = f"{day.isoformat()}T{minute // 60:02d}:{minute % 60:02d}:00Z"
        common = {
            "os": draw(st.sampled_from(["ios", "android"])),
            "region": draw(st.sampled_from(["US", "PH"])),
            "session": f"s{draw(st.integers(min_value=0, max_value=6))}",
        }
        user = draw(st.sampled_from(USERS))
        name = draw(st.sampled_from(["app_launch", "app_launch", "session_end", "recharge_order"]))
        if name == "app_launch":
            properties = {
                "entry_point": draw(st.sampled_from(["feed", "search", "share"])),
                "success": draw(st.sampled_from([True, True, False])),
                **({"gender": draw(st.sampled_from(["f", "m"]))} if draw(st.booleans()) else {}),
                **({"device_brand": draw(st.sampled_from(["apple", "vivo"]))} if draw(st.booleans()) else {}),
            }
        elif name == "session_end":
            properties = {"duration_ms": draw(st.integers(min_value=0, max_value=900_000))}
        else:
            properties = {"order_id": f"o{n}", "amount": 4.99, "currency": "USD"}
        bodies.append(event(f"e{n}", name, time, user, **common, **properties))
    return bodies


def _lake() -> tuple[LocalStorage, Path]:
    root = Path(tempfile.mkdtemp(prefix="range-spans-"))
    return LocalStorage(root), root


def _index(lake: LocalStorage) -> facts.FactsIndex:
    return facts.FactsIndex.load(lake, APP.app_id, APP.timezone)


def _launch_a_day(lake: LocalStorage) -> None:
    """A launch of one user on each of DAYS, every day computed."""
    launches = [
        event(f"e{n}", "app_launch", f"{day}T12:00:00Z", "u1", entry_point="feed")
        for n, day in enumerate(DAYS)
    ]
    ingest(lake, launches, APP)
    compute_days(lake, APP, DAYS)


def _day_by_day(lake: LocalStorage, first: date, last: date) -> dict:
    """The range read from every day's facts: the index as stored, without its spans."""
    index = replace(_index(lake), spans={})
    return without_generated_at(query_range(lake, APP, first, last, index=index))


def test_every_complete_aligned_span_is_built_and_covers_a_range() -> None:
    lake, root = _lake()
    try:
        # GIVEN eleven days with a launch each, every day computed
        _launch_a_day(lake)
        index = _index(lake)

        # THEN every aligned span of 2, 4 and 8 days inside them is stored, and no other
        assert sorted((span.first.isoformat(), span.days) for span in index.spans) == [
            ("2026-11-03", 2),
            ("2026-11-03", 4),
            ("2026-11-03", 8),
            ("2026-11-05", 2),
            ("2026-11-07", 2),
            ("2026-11-07", 4),
            ("2026-11-09", 2),
            ("2026-11-11", 2),
        ]
        # AND the eleven days are read as the first day alone, the 8-day span and the last span of 2
        plan = spans.plan(index, DAYS[0], DAYS[-1])
        assert plan.spans == (facts.Span(date(2026, 11, 3), 8), facts.Span(date(2026, 11, 11), 2))
        assert plan.days == (date(2026, 11, 2),)
        # AND a range that ends inside a span reads the rest of it day by day
        plan = spans.plan(index, date(2026, 11, 3), date(2026, 11, 9))
        assert plan.spans == (facts.Span(date(2026, 11, 3), 4), facts.Span(date(2026, 11, 7), 2))
        assert plan.days == (date(2026, 11, 9),)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@st.composite
def ranges(draw: st.DrawFn) -> list[tuple[date, date]]:
    """Three ranges of two days or more among DAYS."""
    chosen = []
    for _ in range(3):
        first = draw(st.sampled_from(DAYS[:-1]))
        chosen.append((first, draw(st.sampled_from([day for day in DAYS if day > first]))))
    return chosen


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=events_over_days(), chosen=ranges())
def test_a_range_through_spans_is_the_range_day_by_day(bodies, chosen) -> None:
    lake, root = _lake()
    try:
        # GIVEN random events over eleven days, every day computed (and its spans built)
        ingest(lake, bodies, APP)
        compute_days(lake, APP, DAYS)

        # WHEN a range is read through its spans, THEN it is the range read day by day
        for first, last in [*chosen, (DAYS[0], DAYS[-1])]:
            through_spans = without_generated_at(query_range(lake, APP, first, last))
            assert through_spans == _day_by_day(lake, first, last), f"{first}..{last}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _late_launch(n: int, day: date) -> dict:
    return event(f"late{n}", "app_launch", f"{day}T08:00:00Z", "u9", entry_point="search", gender="f")


def test_a_span_whose_days_changed_is_not_read_until_it_is_built_again() -> None:
    lake, root = _lake()
    try:
        # GIVEN every day computed from a launch each
        _launch_a_day(lake)
        before = query_range(lake, APP, DAYS[0], DAYS[-1])
        # WHEN a late launch of a new user arrives on 11-05 and only that day is recomputed, its
        # spans left as they were (as when the run stops before building them)
        late_day = date(2026, 11, 5)
        ingest(lake, [_late_launch(1, late_day)], APP)
        with MetricsSession.open(lake, APP) as session:
            session.document(late_day)
        index = _index(lake)
        assert facts.Span(date(2026, 11, 3), 8) in index.spans  # still stored, now stale

        # THEN the range reads around the stale spans and counts the new user
        plan = spans.plan(index, DAYS[0], DAYS[-1])
        assert all(not (span.first <= late_day <= span.last) for span in plan.spans)
        assert late_day in plan.days
        stale = without_generated_at(query_range(lake, APP, DAYS[0], DAYS[-1]))
        assert stale == _day_by_day(lake, DAYS[0], DAYS[-1])
        users = stale["segments"]["all"]["dashboard"]["active_users"]
        assert users == before["segments"]["all"]["dashboard"]["active_users"] + 1

        # WHEN the next computation builds them again, THEN the range reads them
        compute_days(lake, APP, [DAYS[-1]])
        assert spans.plan(_index(lake), DAYS[0], DAYS[-1]).spans == (
            facts.Span(date(2026, 11, 3), 8),
            facts.Span(date(2026, 11, 11), 2),
        )
        # (the last day, recomputed too, now counts the late user in its total users)
        rebuilt = without_generated_at(query_range(lake, APP, DAYS[0], DAYS[-1]))
        assert rebuilt == _day_by_day(lake, DAYS[0], DAYS[-1])
        assert rebuilt["segments"]["all"]["dashboard"]["active_users"] == users
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_damaged_span_file_is_an_error_naming_it() -> None:
    lake, root = _lake()
    try:
        _launch_a_day(lake)
        # GIVEN the 8-day span's user file changed after it was written
        key = _index(lake).spans[facts.Span(date(2026, 11, 3), 8)].files["user_spans"].key
        path = root / key
        path.write_bytes(path.read_bytes()[:-8] + b"tampered")

        # WHEN a range it covers is queried, THEN no document: an error names the file
        with pytest.raises(DamagedFacts, match=key):
            query_range(lake, APP, DAYS[0], DAYS[-1])
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_index_keeps_its_spans_and_sweeps_their_replaced_files() -> None:
    lake, root = _lake()
    try:
        ingest(lake, [event("e1", "app_launch", f"{DAYS[1]}T12:00:00Z", "u1", entry_point="feed")], APP)
        compute_days(lake, APP, DAYS)
        span = facts.Span(date(2026, 11, 3), 2)
        old = _index(lake).spans[span]
        # WHEN a late event changes a day of the span and the day is recomputed
        ingest(lake, [_late_launch(2, DAYS[2])], APP)
        compute_days(lake, APP, [DAYS[2]])
        # THEN the span is built again from the days as they are, and its old files are gone
        new = _index(lake).spans[span]
        assert new.source == spans.span_source(_index(lake), span) != old.source
        for table, file in old.files.items():
            assert file.key != new.files[table].key
            assert not (root / file.key).exists()
        body = json.loads(lake.get_bytes(facts.facts_index_key(APP.app_id)))
        assert f"{span.first.isoformat()}+{span.days}" in body["spans"]
    finally:
        shutil.rmtree(root, ignore_errors=True)
