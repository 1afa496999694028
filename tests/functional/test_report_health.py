"""Data health through the real pipeline: events ingested into a local lake (accepted to Parquet,
rejected to the quarantine), read back by ``read_data_health``, shown by the report."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from minidrama.config import AppConfig
from minidrama.ingestion import ingest_events
from minidrama.lake import LocalStorage, events_partition
from minidrama.metrics.compaction import compact_partition
from minidrama.report import build_report, window_days
from minidrama.report.health import DataHealth, RejectionReason, read_data_health
from tests.report_fixtures import metrics_document

APP = AppConfig(app_id="dramaapp", timezone="America/Los_Angeles")
DAY = date(2026, 11, 30)  # in Los Angeles: 2026-11-30T08:00Z to 2026-12-01T08:00Z
START = datetime(2026, 11, 30, 8, tzinfo=UTC)


def page_view(number: int, at: datetime, **changes: Any) -> dict[str, Any]:
    event = {
        "event_id": f"e-{number}",
        "event_name": "entrance_exposure",
        "event_time": at.isoformat().replace("+00:00", "Z"),
        "user_id": f"u-{number % 7}",
        "os": "ios",
        "region": "US",
    }
    event.update(changes)
    return {key: value for key, value in event.items() if value is not None}


@pytest.fixture
def lake(tmp_path) -> LocalStorage:
    """GIVEN a day of traffic of an app in Los Angeles, with the day before's and after's edges:

    - 40 good events in the day (hour by hour from 08:00Z), 3 just before it and 2 just after;
    - received during the day: 4 events without user_id, 2 with a bad region, 1 with both;
    - received the day before / after (UTC dates of the same receipt partitions): 3 bad ones.
    """
    storage = LocalStorage(tmp_path / "lake")
    inside = [page_view(n, START + timedelta(minutes=35 * n)) for n in range(40)]
    before = [page_view(100 + n, START - timedelta(minutes=5 + n)) for n in range(3)]
    after = [page_view(200 + n, START + timedelta(days=1, minutes=n)) for n in range(2)]
    bad_in_day = [page_view(300 + n, START + timedelta(hours=3), user_id=None) for n in range(4)]
    bad_in_day += [page_view(310 + n, START + timedelta(hours=3), region="ZZZ") for n in range(2)]
    bad_in_day += [page_view(320, START + timedelta(hours=3), user_id=None, region="U1")]
    assert ingest_events(storage, APP, before, received_at=START - timedelta(minutes=1)).accepted == 3
    ingest_events(
        storage, APP, [page_view(400, START, user_id=None)], received_at=START - timedelta(seconds=1)
    )
    result = ingest_events(storage, APP, inside + bad_in_day, received_at=START + timedelta(hours=4))
    assert result.accepted == 40 and len(result.rejected) == 7
    ingest_events(storage, APP, after, received_at=START + timedelta(days=1, minutes=3))
    late_bad = [page_view(500 + n, START + timedelta(days=1), region="XX") for n in range(2)]
    ingest_events(storage, APP, late_bad, received_at=START + timedelta(days=1, minutes=10))
    return storage


def test_the_days_accepted_and_rejected_events_are_counted_in_its_own_time_zone(lake):
    # WHEN the data health of the Los Angeles day is read
    health = read_data_health(lake, APP.app_id, DAY, timezone=APP.timezone)
    # THEN accepted counts the events whose event time is in the day, and rejected the bad ones
    # received in it (not those received a minute before or after, in the same UTC partitions)
    assert (health.accepted, health.rejected) == (40, 7)
    assert health.rejected_share == pytest.approx(7 / 47)
    # AND the reasons are the rules broken, most frequent first; an event with two counts twice
    assert health.reasons == (
        RejectionReason("user_id: required", 5),
        RejectionReason("region: must be an ISO 3166-1 alpha-2 country code", 3),
    )
    assert health.problems == ()


def test_a_re_sent_batch_counts_until_compaction_keeps_one_copy(lake):
    # GIVEN the day's first hour sent again (a client retry)
    again = [page_view(n, START + timedelta(minutes=35 * n)) for n in range(2)]
    ingest_events(lake, APP, again, received_at=START + timedelta(hours=5))
    assert read_data_health(lake, APP.app_id, DAY, timezone=APP.timezone).accepted == 42
    # WHEN the metrics job compacts the hour THEN each event counts once
    assert compact_partition(lake, APP.app_id, START.date(), 8)
    assert read_data_health(lake, APP.app_id, DAY, timezone=APP.timezone).accepted == 40


def test_an_unreadable_events_file_makes_the_accepted_count_unknown_and_says_which(lake):
    key = events_partition(APP.app_id, START.date(), 9) + "broken.parquet"
    lake.put_bytes(key, b"not parquet")
    health = read_data_health(lake, APP.app_id, DAY, timezone=APP.timezone)
    assert health.accepted is None and health.rejected_share is None
    assert len(health.problems) == 1 and key in health.problems[0]
    # AND a quarantine line that is not a record is named, the others still counted
    lake.put_bytes("quarantine/app_id=dramaapp/dt=2026-11-30/odd.jsonl", b"{not json\n")
    health = read_data_health(lake, APP.app_id, DAY, timezone=APP.timezone)
    assert health.rejected == 7 and any("odd.jsonl line 1" in problem for problem in health.problems)


def test_a_day_without_any_traffic_is_zero_and_zero(tmp_path):
    health = read_data_health(LocalStorage(tmp_path / "empty"), "nobody", DAY)
    assert (health.accepted, health.rejected, health.reasons, health.rejected_share) == (0, 0, (), None)


# --- in the report -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report_with_health():
    health = DataHealth(
        day=DAY,
        timezone="UTC",
        accepted=11_532,
        rejected=58,
        reasons=(
            RejectionReason("user_id: required", 24),
            RejectionReason("region: must be an ISO code", 17),
        ),
        more_reasons=2,
    )
    documents = {day: metrics_document("dramaapp", day) for day in window_days(DAY)}
    return build_report("dramaapp", DAY, documents, health=health)


def test_the_report_has_a_data_health_section_after_performance(report_with_health):
    html = report_with_health.html
    assert html.index('id="performance"') < html.index('id="data-health"') < html.index("<footer")
    assert 'data-health="accepted">11,532<' in html and 'data-health="rejected">58<' in html
    assert "user_id: required" in html and "And 2 more reason(s)" in html
    # AND it says which days may still change (the default RECOMPUTE_DAYS of 3: the day and the one before)
    assert "Figures of the last 2 day(s) (2026-11-29, 2026-11-30) may still change" in html
    # AND what it counts
    assert "by event time" in html and "quarantine/app_id=dramaapp/" in html
    assert 'id="data-health"' in report_with_health.email_html


def test_the_plain_text_carries_the_data_health(report_with_health):
    text = report_with_health.text
    assert "DATA HEALTH" in text and "11,532" in text and "(0.5% of all)" in text
    assert "24  user_id: required" in text
    assert "Figures of 2026-11-29, 2026-11-30 may still change" in text


def test_without_health_the_report_has_no_such_section():
    documents = {day: metrics_document("dramaapp", day) for day in window_days(DAY)}
    assert 'id="data-health"' not in build_report("dramaapp", DAY, documents).html
