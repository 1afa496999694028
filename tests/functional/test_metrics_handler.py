"""The metrics function on moto's S3: schedule trigger, compaction, documents, backfill."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import jsonschema
import pytest
from moto import mock_aws

from minidrama.config import add_app, register_app
from minidrama.ingestion import ingest_events
from minidrama.lake import S3Storage, metrics_key
from minidrama.metrics.schema import json_schema
from tests.conftest import load_event, load_handler
from tests.metrics_support import event

BUCKET = "minidrama-lake-test"


@pytest.fixture
def s3_lake(aws_env, monkeypatch):
    monkeypatch.setenv("LAKE_BUCKET", BUCKET)
    monkeypatch.setenv("RECOMPUTE_DAYS", "3")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield S3Storage(client, BUCKET)


def _launches(app, day, count, batch):
    start = datetime.combine(day, datetime.min.time(), app.zone).astimezone(UTC) + timedelta(hours=1)
    return [
        event(
            f"{batch}-{day}-{n}",
            "app_launch",
            (start + timedelta(minutes=n)).isoformat(),
            f"u{n}",
            entry_point="feed",
        )
        for n in range(count)
    ]


def test_the_hourly_run_refreshes_each_app_two_hours_before_its_report_hour(s3_lake, lambda_context):
    # GIVEN three apps with events over their last three days, sent in two batches each (two small
    # files per hour partition); the run at 06:05 UTC is 06:05 in UTC and 11:35 in Kolkata
    apps = [
        add_app(s3_lake, "drama-a")[0],  # reports at 08:00 UTC: refreshed in the 06:00 hour
        add_app(s3_lake, "drama-b", timezone="Asia/Kolkata", report_hour=13)[0],  # 11:00 there
        add_app(s3_lake, "drama-c", report_hour=12)[0],  # 10:00 UTC: not yet
    ]
    event = load_event("metrics_schedule")
    now = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    assert now == datetime(2026, 11, 29, 6, 5, tzinfo=UTC)
    for app in apps:
        for day in app.complete_days(now, 3):
            for batch in ("first", "second"):
                ingest_events(s3_lake, app, _launches(app, day, 5, batch), received_at=now)
    handler = load_handler("metrics")

    # WHEN the schedule fires
    response = handler.lambda_handler(event, lambda_context)

    # THEN the two apps due have their last three days in schema-valid documents counting all
    # ten launches, and the third app waits for its own hour
    assert sorted(result["app_id"] for result in response["apps"]) == ["drama-a", "drama-b"]
    assert not s3_lake.list("metrics/app_id=drama-c/")
    apps = apps[:2]
    validator = jsonschema.Draft202012Validator(json_schema())
    for app in apps:
        for day in app.complete_days(now, 3):
            document = json.loads(s3_lake.get_bytes(metrics_key(app.app_id, day)))
            validator.validate(document)
            assert document["timezone"] == app.timezone
            assert document["segments"]["all"]["dashboard"]["active_users"] == 5
            assert document["segments"]["all"]["behavior"]["visit_count"] == 10
    # AND each hour partition holds one compacted file
    for app in apps:
        data_files = [
            info.key for info in s3_lake.list(f"events/app_id={app.app_id}/") if info.key.endswith(".parquet")
        ]
        assert data_files and all("/compacted-" in key for key in data_files)
        assert all(result["compacted_partitions"] > 0 for result in response["apps"])


def test_backfill_event_recomputes_named_days_of_one_app(s3_lake, lambda_context):
    app = register_app(s3_lake, "drama-a")[0]
    ingest_events(
        s3_lake, app, _launches(app, datetime(2026, 10, 1).date(), 3, "b"), received_at=datetime.now(UTC)
    )
    handler = load_handler("metrics")

    response = handler.lambda_handler(
        {"app_id": "drama-a", "dates": ["2026-10-01", "2026-10-02"]}, lambda_context
    )

    assert response["apps"][0]["documents"] == [
        metrics_key("drama-a", "2026-10-01"),
        metrics_key("drama-a", "2026-10-02"),
    ]
    document = json.loads(s3_lake.get_bytes(metrics_key("drama-a", "2026-10-02")))
    assert document["segments"]["all"]["dashboard"] == {
        "total_users": 3,
        "active_users": 0,
        "new_users": 0,
        "median_duration_per_user_ms": None,
    }
