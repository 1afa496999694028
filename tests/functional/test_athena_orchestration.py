"""The Athena engine's orchestration: the metrics function's threshold, the state machine of
template.yaml, the assembly call, and what a failure leaves behind.

AWS is moto (S3, and Step Functions for starting executions, which moto records but does not run).
The state machine's definition is taken from template.yaml and run by ``tests.asl``; its Athena
queries are answered by DuckDB running the same plan (rebuilt from the execution's input, as the
assembly rebuilds it) over the lake's events, writing each statement's files where Athena would;
its Lambda call is the metrics function's own handler.
"""

from __future__ import annotations

import json
import re
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
from cfnlint.decode import cfn_yaml
from moto import mock_aws

from minidrama.config import add_app
from minidrama.ingestion import ingest_events
from minidrama.lake import LocalStorage, S3Storage, metrics_key
from minidrama.metrics import compute_days
from minidrama.metrics.athena import day_event_bytes, plan_from_payload
from minidrama.metrics.facts import facts_index_key
from tests.asl import Execution, ExecutionFailed, TaskFailed, run
from tests.conftest import ROOT, load_handler
from tests.metrics_support import event, without_generated_at

BUCKET = "minidrama-lake-test"
STACK = "minidrama-test"
DATABASE = "minidrama"
STATE_MACHINE = f"arn:aws:states:us-east-1:123456789012:stateMachine:{STACK}-athena-day"
NOW = datetime(2026, 11, 29, 6, 5, tzinfo=UTC)
SMALL_DAY, LARGE_DAY = date(2026, 11, 27), date(2026, 11, 28)
ATHENA = "arn:aws:states:::athena:startQueryExecution.sync"
LAMBDA = "arn:aws:states:::lambda:invoke"
DROP_TABLES = "arn:aws:states:::aws-sdk:glue:batchDeleteTable"


def state_machine_definition() -> dict[str, Any]:
    """The template's definition, with its substitutions made as CloudFormation makes them."""
    resource = cfn_yaml.load(str(ROOT / "template.yaml"))["Resources"]["AthenaDayStateMachine"]
    text = json.dumps(resource["Properties"]["Definition"])
    for name in resource["Properties"]["DefinitionSubstitutions"]:
        text = text.replace("${" + name + "}", f"substituted-{name}")
    return json.loads(text)


def day_of_events(day: date, users: int, batch: str) -> list[dict[str, Any]]:
    """Launches, a watched episode, funnel page views and a recharge per user, over the day."""
    start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=1)
    events = []
    for n in range(users):
        at = start + timedelta(minutes=7 * n)
        user, os_name, region = f"u{n % 9}", ("ios", "android")[n % 2], ("US", "PH", "BR")[n % 3]
        common = {"os": os_name, "region": region}
        session = f"s-{batch}-{day}-{n}"
        events += [
            event(
                f"{batch}-{day}-{n}-l",
                "app_launch",
                at.isoformat(),
                user,
                session=session,
                entry_point=("feed", "search")[n % 2],
                **common,
            ),
            event(
                f"{batch}-{day}-{n}-v",
                "page_view",
                (at + timedelta(minutes=1)).isoformat(),
                user,
                page="recharge_page",
                **common,
            ),
            event(
                f"{batch}-{day}-{n}-e",
                "session_end",
                (at + timedelta(minutes=3)).isoformat(),
                user,
                session=session,
                duration_ms=180_000 + n,
                **common,
            ),
        ]
        if n % 3 == 0:
            events.append(
                event(
                    f"{batch}-{day}-{n}-o",
                    "recharge_order",
                    (at + timedelta(minutes=2)).isoformat(),
                    user,
                    order_id=f"o-{batch}-{day}-{n}",
                    amount=4.99,
                    currency="USD",
                    product_id="coins_100",
                    status="paid",
                    **common,
                )
            )
    return events


@pytest.fixture
def aws(aws_env, monkeypatch):
    monkeypatch.setenv("LAKE_BUCKET", BUCKET)
    monkeypatch.setenv("RECOMPUTE_DAYS", "3")
    monkeypatch.setenv("ATHENA_STATE_MACHINE", STATE_MACHINE)
    monkeypatch.setenv("GLUE_DATABASE", DATABASE)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        states = boto3.client("stepfunctions", region_name="us-east-1")
        states.create_state_machine(
            name=f"{STACK}-athena-day",
            definition=json.dumps(state_machine_definition()),
            roleArn="arn:aws:iam::123456789012:role/athena-day",
        )
        yield S3Storage(s3, BUCKET), states


def handler_with_threshold(monkeypatch, threshold: int):
    monkeypatch.setenv("ATHENA_DAY_BYTES", str(threshold))
    return load_handler("metrics")


def mirror(storage: S3Storage, prefix: str, root: Path) -> LocalStorage:
    """The lake's objects under ``prefix`` in a local lake (what DuckDB reads)."""
    local = LocalStorage(root)
    for info in storage.list(prefix):
        local.put_bytes(info.key, storage.get_bytes(info.key))
    return local


class AthenaOnDuckDB:
    """Athena for the state machine: runs each query of the execution's plan on DuckDB over the
    lake's events (hive partitions, every file, as the Glue table shows them) and stores what the
    statement writes under its location in the lake, as Athena does; ``fail`` names a statement
    whose query fails instead."""

    def __init__(self, storage: S3Storage, app, payload: dict[str, Any], fail: str | None = None) -> None:
        self.storage, self.fail = storage, fail
        self.plan = plan_from_payload(payload, app, BUCKET)
        self.by_query = {
            item["query"]: statement
            for stage, items in zip(self.plan.stages, payload["stages"], strict=True)
            for statement, item in zip(stage, items, strict=True)
        }
        self.root = Path(tempfile.mkdtemp(prefix="athena-duckdb-"))
        mirror(storage, "events/", self.root)
        self.connection = duckdb.connect()
        self.connection.execute("SET TimeZone = 'UTC'")
        self.connection.execute(f"CREATE SCHEMA {DATABASE}")
        self.connection.execute(
            f"CREATE VIEW {DATABASE}.events AS SELECT * FROM read_parquet('{self.root}/events/**/*.parquet', "
            "hive_partitioning = true, hive_types = {'app_id': VARCHAR, 'dt': VARCHAR, 'hour': INTEGER}, "
            "union_by_name = true)"
        )
        self.ran: list[str] = []

    def __call__(self, parameters: dict[str, Any]) -> dict[str, Any]:
        assert parameters["WorkGroup"] == "substituted-WorkGroup"
        statement = self.by_query[parameters["QueryString"]]
        if statement.name == self.fail:
            raise TaskFailed("States.TaskFailed", "Query exhausted resources at this scale factor")
        self.ran.append(statement.name)
        out = self.root / "out" / statement.name.replace("/", "-") / "part-0.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        query = self.plan.query(statement, "duckdb")
        if statement.kind == "table":
            self.connection.execute(query)
            self.connection.execute(
                f"COPY {DATABASE}.{self.plan.table(statement.name)} TO '{out}' (FORMAT parquet)"
            )
        else:
            self.connection.execute(re.sub(r"TO '[^']+'", f"TO '{out}'", query))
        key = statement.location.removeprefix(f"s3://{BUCKET}/") + "part-0.parquet"
        self.storage.put_bytes(key, out.read_bytes())
        return {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}}


def resources(athena, metrics_handler, lambda_context, throttled: int = 0):
    """The state machine's three integrations; the Lambda call is throttled ``throttled`` times
    (the metrics function is busy with the hourly run) and turns the handler's exception into the
    task's error, named after it, as Step Functions does."""
    dropped: list[dict[str, Any]] = []
    invocations: list[dict[str, Any]] = []

    def invoke(parameters):
        invocations.append(parameters)
        if len(invocations) <= throttled:
            raise TaskFailed("Lambda.TooManyRequestsException", "Rate Exceeded.")
        assert parameters["FunctionName"] == "substituted-MetricsFunctionArn"
        try:
            return {
                "StatusCode": 200,
                "Payload": metrics_handler.lambda_handler(parameters["Payload"], lambda_context),
            }
        except Exception as error:
            raise TaskFailed(type(error).__name__, str(error)) from error

    def drop(parameters):
        dropped.append(parameters)
        return {"Errors": []}

    return {ATHENA: athena, LAMBDA: invoke, DROP_TABLES: drop}, dropped, invocations


def started_input(states) -> dict[str, Any]:
    executions = states.list_executions(stateMachineArn=STATE_MACHINE)["executions"]
    assert len(executions) == 1, executions
    return json.loads(states.describe_execution(executionArn=executions[0]["executionArn"])["input"])


def test_a_day_over_the_threshold_is_computed_on_athena_and_written_by_the_assembly(
    aws, monkeypatch, lambda_context, tmp_path
):
    storage, states = aws
    # GIVEN an app with a small day and a large one (three times the events)
    app = add_app(storage, "drama-a")[0]
    ingest_events(storage, app, day_of_events(SMALL_DAY, 20, "a"), received_at=NOW)
    ingest_events(storage, app, day_of_events(LARGE_DAY, 60, "a"), received_at=NOW)
    ingest_events(storage, app, day_of_events(LARGE_DAY, 60, "a")[::4], received_at=NOW)  # re-sent copies
    small, large = day_event_bytes(storage, app, SMALL_DAY), day_event_bytes(storage, app, LARGE_DAY)
    assert small < large
    # and the metrics function's threshold between the two
    handler = handler_with_threshold(monkeypatch, (small + large) // 2)

    # WHEN both days are backfilled
    response = handler.lambda_handler(
        {"app_id": app.app_id, "dates": [str(SMALL_DAY), str(LARGE_DAY)]}, lambda_context
    )

    # THEN the small day is computed here, and the large one is only sent to the state machine
    assert [run["day"] for run in response["athena_runs"]] == [str(LARGE_DAY)]
    assert json.loads(storage.get_bytes(metrics_key(app.app_id, SMALL_DAY)))["engine"] == "duckdb"
    assert not storage.exists(metrics_key(app.app_id, LARGE_DAY))
    payload = started_input(states)
    assert (payload["app_id"], payload["day"], payload["database"]) == (app.app_id, str(LARGE_DAY), DATABASE)

    # WHEN the state machine runs, its call to the metrics function throttled twice by the hourly run
    athena = AthenaOnDuckDB(storage, app, payload)
    integrations, dropped, invocations = resources(athena, handler, lambda_context, throttled=2)
    execution = Execution(integrations)
    output = run(state_machine_definition(), payload, execution)

    # THEN every query ran, stage after stage, then the assembly, then the run tables were dropped
    assert athena.ran == [statement.name for stage in athena.plan.stages for statement in stage]
    assert len(invocations) == 3
    assert dropped == [{"DatabaseName": DATABASE, "TablesToDelete": payload["tables"]}]
    assert metrics_key(app.app_id, LARGE_DAY) in output["documents"]
    # AND the day's document is the embedded engine's, value by value, recorded as Athena's
    athena_document = json.loads(storage.get_bytes(metrics_key(app.app_id, LARGE_DAY)))
    local = mirror(storage, "events/", tmp_path / "embedded")
    compute_days(local, app, [SMALL_DAY, LARGE_DAY])
    embedded = json.loads(local.get_bytes(metrics_key(app.app_id, LARGE_DAY)))
    assert (athena_document.pop("engine"), embedded.pop("engine")) == ("athena", "duckdb")
    assert without_generated_at(athena_document) == without_generated_at(embedded)
    assert athena_document["segments"]["all"]["dashboard"]["active_users"] == 9


@pytest.mark.parametrize("failure", ["query", "expired run"])
def test_a_failed_athena_run_fails_loudly_and_leaves_the_day_as_it_was(
    aws, monkeypatch, lambda_context, failure
):
    storage, states = aws
    # GIVEN a day computed by the embedded engine
    app = add_app(storage, "drama-a")[0]
    ingest_events(storage, app, day_of_events(LARGE_DAY, 30, "a"), received_at=NOW)
    handler_with_threshold(monkeypatch, 0).lambda_handler(
        {"app_id": app.app_id, "dates": [str(LARGE_DAY)]}, lambda_context
    )
    before = {
        key: storage.get_bytes(key)
        for key in [metrics_key(app.app_id, LARGE_DAY), facts_index_key(app.app_id)]
    }
    facts_before = sorted(info.key for info in storage.list("facts/"))
    # and late events that make it large enough for the Athena engine
    ingest_events(storage, app, day_of_events(LARGE_DAY, 30, "late"), received_at=NOW)
    handler = handler_with_threshold(monkeypatch, 1)
    handler.lambda_handler({"app_id": app.app_id, "dates": [str(LARGE_DAY)]}, lambda_context)
    payload = started_input(states)

    # WHEN a query of the facts stage fails on Athena, or the run's files expired before the assembly
    athena = AthenaOnDuckDB(storage, app, payload, fail="user_days" if failure == "query" else None)
    answer = athena
    if failure == "expired run":
        statements = sum(len(stage) for stage in payload["stages"])

        def answer(parameters):  # type: ignore[no-redef]
            result = athena(parameters)
            if len(athena.ran) == statements:  # the last query done: the run's files expire
                storage.delete([info.key for info in storage.list(f"athena-runs/app_id={app.app_id}/")])
            return result

    integrations, dropped, invocations = resources(answer, handler, lambda_context)
    execution = Execution(integrations)
    with pytest.raises(ExecutionFailed) as failed:
        run(state_machine_definition(), payload, execution)

    # THEN the execution fails with the cause, the run tables are dropped all the same
    if failure == "query":
        assert failed.value.error == "States.TaskFailed"
        assert "exhausted resources" in failed.value.cause
        assert not invocations  # no assembly of a partial run
    else:
        assert failed.value.error == "MissingResults"
        assert "expired or never ran" in failed.value.cause
    assert dropped == [{"DatabaseName": DATABASE, "TablesToDelete": payload["tables"]}]
    # AND the day's document, its facts and the facts index are untouched
    assert {key: storage.get_bytes(key) for key in before} == before
    assert sorted(info.key for info in storage.list("facts/")) == facts_before
    assert json.loads(before[metrics_key(app.app_id, LARGE_DAY)])["engine"] == "duckdb"


def test_below_the_threshold_or_without_one_every_day_is_computed_here(aws, monkeypatch, lambda_context):
    storage, states = aws
    app = add_app(storage, "drama-a")[0]
    ingest_events(storage, app, day_of_events(LARGE_DAY, 10, "a"), received_at=NOW)
    size = day_event_bytes(storage, app, LARGE_DAY)
    for threshold in (0, size):  # 0: the Athena engine is off; a day of exactly the threshold stays
        response = handler_with_threshold(monkeypatch, threshold).lambda_handler(
            {"app_id": app.app_id, "dates": [str(LARGE_DAY)]}, lambda_context
        )
        assert response["athena_runs"] == []
        assert json.loads(storage.get_bytes(metrics_key(app.app_id, LARGE_DAY)))["engine"] == "duckdb"
    assert states.list_executions(stateMachineArn=STATE_MACHINE)["executions"] == []


def test_a_retried_invocation_does_not_start_the_day_twice(aws, monkeypatch, lambda_context):
    # Lambda retries an asynchronous invocation with the same request id: the run is named by it
    storage, states = aws
    app = add_app(storage, "drama-a")[0]
    ingest_events(storage, app, day_of_events(LARGE_DAY, 10, "a"), received_at=NOW)
    handler = handler_with_threshold(monkeypatch, 1)
    first = handler.lambda_handler({"app_id": app.app_id, "dates": [str(LARGE_DAY)]}, lambda_context)
    again = handler.lambda_handler({"app_id": app.app_id, "dates": [str(LARGE_DAY)]}, lambda_context)
    assert first["athena_runs"] == again["athena_runs"]
    assert len(states.list_executions(stateMachineArn=STATE_MACHINE)["executions"]) == 1
