"""template.yaml's Athena engine: the state machine's shape, its least-privilege role, how the
metrics function reaches it, and what keeps its files and failures from going unnoticed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
STATE_MACHINE_ARN = (
    "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-athena-day"
)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_yaml.load(str(ROOT / "template.yaml"))


def _resource(template: dict[str, Any], name: str) -> dict[str, Any]:
    return template["Resources"][name]


def _role_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    role = _resource(template, "AthenaDayRole")["Properties"]
    return [statement for policy in role["Policies"] for statement in policy["PolicyDocument"]["Statement"]]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _sub(value: Any) -> str:
    """The text of a resource: a !Sub string, or a !GetAtt / !Ref written as the !Sub would be."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        return value["Fn::Sub"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    if isinstance(value, dict) and "Ref" in value:
        return "${" + value["Ref"] + "}"
    return str(value)


def _definition(template: dict[str, Any]) -> dict[str, Any]:
    return _resource(template, "AthenaDayStateMachine")["Properties"]["Definition"]


def _tasks(states: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for state in states.values():
        if state["Type"] == "Task":
            found.append(state)
        if state["Type"] == "Map":
            found += _tasks(state["ItemProcessor"]["States"])
    return found


def test_the_state_machine_runs_the_stages_in_order_and_each_stages_queries_in_parallel(template):
    definition = _definition(template)
    stages = definition["States"][definition["StartAt"]]
    assert (stages["Type"], stages["ItemsPath"], stages["MaxConcurrency"]) == ("Map", "$.stages", 1)
    statements = stages["ItemProcessor"]["States"][stages["ItemProcessor"]["StartAt"]]
    assert statements["Type"] == "Map" and statements["MaxConcurrency"] > 1
    query = statements["ItemProcessor"]["States"][statements["ItemProcessor"]["StartAt"]]
    # Step Functions waits for each query itself (.sync): no Lambda polls Athena
    assert query["Resource"] == "arn:aws:states:::athena:startQueryExecution.sync"
    assert query["Parameters"] == {"QueryString.$": "$.query", "WorkGroup": "${WorkGroup}"}
    substitutions = _resource(template, "AthenaDayStateMachine")["Properties"]["DefinitionSubstitutions"]
    assert substitutions["WorkGroup"] == {"Ref": "LakeWorkGroup"}
    # nothing the queries return is carried along: the execution's data stays the plan (< 256 KiB)
    assert stages["ResultPath"] is None and query["ResultPath"] is None


def test_every_failure_drops_the_run_tables_and_fails_the_execution(template):
    states = _definition(template)["States"]
    for name in ("RunStages", "Assemble"):
        catch = states[name]["Catch"]
        assert catch == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "DropRunTablesAfterFailure"}
        ]
    cleanup = states["DropRunTablesAfterFailure"]
    assert cleanup["Resource"] == "arn:aws:states:::aws-sdk:glue:batchDeleteTable"
    assert cleanup["Next"] == "DayFailed" and cleanup["Catch"][0]["Next"] == "DayFailed"
    assert states["DayFailed"]["Type"] == "Fail"
    # the success path drops them too
    assert states["Assemble"]["Next"] == "DropRunTables" and states["DropRunTables"].get("End")


def test_the_assembly_call_waits_out_the_metrics_functions_single_concurrency(template):
    assemble = _definition(template)["States"]["Assemble"]
    assert assemble["Resource"] == "arn:aws:states:::lambda:invoke"
    substitutions = _resource(template, "AthenaDayStateMachine")["Properties"]["DefinitionSubstitutions"]
    assert substitutions["MetricsFunctionArn"] == {"Fn::GetAtt": ["MetricsFunction", "Arn"]}
    assert _resource(template, "MetricsFunction")["Properties"]["ReservedConcurrentExecutions"] == 1
    throttled = next(r for r in assemble["Retry"] if "Lambda.TooManyRequestsException" in r["ErrorEquals"])
    # a full hourly run takes at most the function's 15 minutes: retries must outlast it
    waits, delay = 0.0, float(throttled["IntervalSeconds"])
    for _ in range(throttled["MaxAttempts"]):
        waits += min(delay, throttled.get("MaxDelaySeconds", delay))
        delay *= throttled["BackoffRate"]
    assert waits > 2 * _resource(template, "MetricsFunction")["Properties"]["Timeout"]
    # an error of the function itself (a bug, expired results) is not retried: it fails the day
    assert all("States.ALL" not in r["ErrorEquals"] for r in assemble["Retry"])


def test_the_role_is_for_step_functions_of_this_account_only(template):
    trust = _resource(template, "AthenaDayRole")["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "states.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
        }
    ]
    assert _resource(template, "AthenaDayStateMachine")["Properties"]["Role"] == {
        "Fn::GetAtt": ["AthenaDayRole", "Arn"]
    }


def test_the_role_is_least_privilege(template):
    allowed: dict[str, set[str]] = {}
    for statement in _role_statements(template):
        assert statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"]):
            assert "*" not in action, action
            allowed.setdefault(action, set()).update(_sub(r) for r in _as_list(statement["Resource"]))
    for action, resources in allowed.items():
        service = action.split(":")[0]
        assert "*" not in resources, action
        if service == "athena":  # the stack's workgroup only
            assert resources == {
                "arn:${AWS::Partition}:athena:${AWS::Region}:${AWS::AccountId}:workgroup/${LakeWorkGroup}"
            }, action
        elif service == "glue":  # the database only; writes only on the run tables
            glue = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:"
            tables = {r for r in resources if r.startswith(glue + "table/")}
            assert resources - tables <= {glue + "catalog", glue + "database/${GlueDatabaseName}"}, action
            expected = (
                "run_*"
                if action in {"glue:CreateTable", "glue:DeleteTable", "glue:BatchDeleteTable"}
                else "*"
            )
            assert tables == {glue + "table/${GlueDatabaseName}/" + expected}, action
        elif service == "s3":
            for resource in resources:
                assert resource.startswith("${LakeBucket.Arn}"), (action, resource)
            if action in {"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}:
                assert resources == {"${LakeBucket.Arn}/athena-runs/*", "${LakeBucket.Arn}/athena-results/*"}
            if action == "s3:GetObject":
                assert resources == {
                    "${LakeBucket.Arn}/events/*",
                    "${LakeBucket.Arn}/athena-runs/*",
                    "${LakeBucket.Arn}/athena-results/*",
                }
        elif service == "lambda":
            assert (action, resources) == ("lambda:InvokeFunction", {"${MetricsFunction.Arn}"})
        else:
            pytest.fail(f"unexpected action {action}")
    # listing the bucket only where the queries read and write
    listing = next(s for s in _role_statements(template) if "s3:ListBucket" in _as_list(s["Action"]))
    assert sorted(listing["Condition"]["StringLike"]["s3:prefix"]) == [
        "athena-results/*",
        "athena-runs/*",
        "events/*",
    ]
    # nothing may delete lake objects or touch the facts, metrics, state or quarantine
    assert "s3:DeleteObject" not in allowed


def test_the_role_allows_every_integration_the_definition_uses(template):
    needs = {
        "arn:aws:states:::athena:startQueryExecution.sync": {
            "athena:StartQueryExecution",
            "athena:GetQueryExecution",
            "athena:StopQueryExecution",
        },
        "arn:aws:states:::lambda:invoke": {"lambda:InvokeFunction"},
        "arn:aws:states:::aws-sdk:glue:batchDeleteTable": {"glue:BatchDeleteTable"},
    }
    actions = {action for s in _role_statements(template) for action in _as_list(s["Action"])}
    for task in _tasks(_definition(template)["States"]):
        assert needs[task["Resource"]] <= actions, task["Resource"]
    # the queries themselves: read the events table, create the run tables, write their files
    assert {"glue:GetTable", "glue:CreateTable", "s3:GetObject", "s3:PutObject"} <= actions


def test_the_metrics_function_starts_only_this_state_machine_by_its_name(template):
    machine = _resource(template, "AthenaDayStateMachine")["Properties"]
    assert machine["Name"] == {"Fn::Sub": "${AWS::StackName}-athena-day"}
    function = _resource(template, "MetricsFunction")["Properties"]
    variables = function["Environment"]["Variables"]
    assert variables["ATHENA_STATE_MACHINE"] == {"Fn::Sub": STATE_MACHINE_ARN}
    assert variables["ATHENA_DAY_BYTES"] == {"Ref": "AthenaEngineDayBytes"}
    assert variables["GLUE_DATABASE"] == {"Ref": "GlueDatabaseName"}
    starts = [
        statement
        for policy in function["Policies"]
        if isinstance(policy, dict)
        for statement in policy.get("Statement", [])
        if "states:StartExecution" in _as_list(statement["Action"])
    ]
    assert [_sub(s["Resource"]) for s in starts] == [STATE_MACHINE_ARN]
    threshold = template["Parameters"]["AthenaEngineDayBytes"]
    assert threshold["MinValue"] == 0 and threshold["Default"] > 0


def test_the_metrics_layer_carries_the_sql_translator_the_engine_imports():
    requirements = (ROOT / "layers" / "duckdb" / "requirements.txt").read_text()
    assert any(line.startswith("sqlglot==") for line in requirements.splitlines())


def test_run_files_expire_and_a_failed_day_raises_the_alarm(template):
    rules = _resource(template, "LakeBucket")["Properties"]["LifecycleConfiguration"]["Rules"]
    runs = next(rule for rule in rules if rule.get("Prefix") == "athena-runs/")
    assert runs["Status"] == "Enabled" and runs["ExpirationInDays"] == {"Ref": "AthenaResultRetentionDays"}
    alarm = _resource(template, "AthenaDayFailedAlarm")["Properties"]
    measured = {
        query["MetricStat"]["Metric"]["MetricName"]: query["MetricStat"]["Metric"]["Dimensions"]
        for query in alarm["Metrics"]
        if "MetricStat" in query
    }
    assert set(measured) == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    for dimensions in measured.values():
        assert dimensions == [{"Name": "StateMachineArn", "Value": {"Ref": "AthenaDayStateMachine"}}]
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert json.dumps(alarm["AlarmActions"]).count("AlarmTopic") == 1
