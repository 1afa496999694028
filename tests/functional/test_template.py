"""template.yaml states the deployment's contract: what each function runs with and may touch.

The template is read as CloudFormation YAML (cfn-lint's loader, so ``!Ref`` and friends become
``{"Ref": ...}``); the checks are on what a deployment relies on, not on formatting.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]

FUNCTIONS = ["IngestFunction", "WriterFunction", "MetricsFunction", "ReportFunction", "QueryFunction"]

# The sample triggers of events/ each function's tests load (written with the handlers).
SAMPLE_EVENTS = ["ingest_request", "writer_sqs_batch", "metrics_schedule", "report_schedule"]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_yaml.load(str(ROOT / "template.yaml"))


def _resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


def _properties(template: dict[str, Any], name: str) -> dict[str, Any]:
    return _resources(template)[name]["Properties"]


def _function_setting(template: dict[str, Any], name: str, key: str) -> Any:
    """A function property, falling back to Globals as SAM does."""
    return _properties(template, name).get(key, template["Globals"]["Function"].get(key))


def _events_of_type(template: dict[str, Any], name: str, event_type: str) -> list[dict[str, Any]]:
    events = _properties(template, name).get("Events", {}).values()
    return [event["Properties"] for event in events if event["Type"] == event_type]


def _statements(template: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in _properties(template, name).get("Policies", [])
        if isinstance(policy, dict) and "Statement" in policy
        for statement in policy["Statement"]
    ]


def _policy_templates(template: dict[str, Any], name: str) -> set[str]:
    return {
        key
        for policy in _properties(template, name).get("Policies", [])
        if isinstance(policy, dict)
        for key in policy
        if key != "Statement"
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- functions and their code ------------------------------------------------------------------


def test_the_template_declares_the_five_functions(template: dict[str, Any]) -> None:
    # GIVEN the template WHEN listing its functions THEN they are the pipeline's four and the reader
    functions = {
        name
        for name, resource in _resources(template).items()
        if resource["Type"] == "AWS::Serverless::Function"
    }

    assert functions == set(FUNCTIONS)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_handler_exists_where_the_template_points(template: dict[str, Any], function: str) -> None:
    # GIVEN a function's CodeUri and Handler ("module.function")
    code_dir = ROOT / _function_setting(template, function, "CodeUri")
    module, handler = _function_setting(template, function, "Handler").rsplit(".", 1)

    # WHEN reading the module it names
    source = code_dir / f"{module}.py"
    assert source.is_file(), f"{function}: {source.relative_to(ROOT)} does not exist"
    defined = {node.name for node in ast.parse(source.read_text()).body if isinstance(node, ast.FunctionDef)}

    # THEN the handler is a top-level function of it
    assert handler in defined, f"{function}: {source.relative_to(ROOT)} defines no {handler}()"


@pytest.mark.parametrize(
    ("function", "layers"),
    [
        ("IngestFunction", ["CoreLayer"]),
        ("WriterFunction", ["CoreLayer", "PyarrowLayer"]),
        ("MetricsFunction", ["CoreLayer", "DuckdbLayer"]),
        ("ReportFunction", ["CoreLayer", "ReportLayer"]),
        ("QueryFunction", ["CoreLayer", "DuckdbLayer"]),
    ],
)
def test_each_function_gets_only_the_layers_it_needs(
    template: dict[str, Any], function: str, layers: list[str]
) -> None:
    # GIVEN the function's layers, Globals included (SAM prepends them)
    referenced = [
        *template["Globals"]["Function"].get("Layers", []),
        *_properties(template, function).get("Layers", []),
    ]

    # THEN they are exactly the intended ones: pyarrow for the writer alone, DuckDB for the
    # metrics alone, the report stack for the report alone (each must fit in 250 MB)
    assert referenced == [{"Ref": layer} for layer in layers]


@pytest.mark.parametrize(
    ("layer", "required", "forbidden"),
    [
        (
            "CoreLayer",
            {"aws-lambda-powertools", "aws-xray-sdk"},
            {"pyarrow", "duckdb", "boto3", "botocore", "pydantic"},
        ),
        ("PyarrowLayer", {"pyarrow"}, {"boto3", "botocore"}),
        ("DuckdbLayer", {"duckdb"}, {"pyarrow", "boto3", "botocore"}),
        ("ReportLayer", {"jinja2", "weasyprint", "vl-convert-python"}, {"pyarrow", "boto3", "botocore"}),
    ],
)
def test_each_layer_is_built_by_its_makefile_from_its_requirements(
    template: dict[str, Any], layer: str, required: set[str], forbidden: set[str]
) -> None:
    # GIVEN a layer resource
    resource = _resources(template)[layer]
    content = ROOT / resource["Properties"]["ContentUri"]

    # THEN sam build runs its Makefile target (build-<LogicalId>) for the Lambda platform
    assert resource["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "x86_64"}
    assert f"build-{layer}:" in (content / "Makefile").read_text()
    assert resource["Properties"]["CompatibleRuntimes"] == ["python3.12"]

    # AND its requirements name what its functions import, and nothing the runtime has or
    # another layer carries
    lines = [line.split("#")[0].strip() for line in (content / "requirements.txt").read_text().splitlines()]
    names = {line.split("==")[0].split(">=")[0].lower() for line in lines if line}
    assert required <= names
    assert not names & forbidden


def test_the_core_layer_ships_the_minidrama_package(template: dict[str, Any]) -> None:
    # GIVEN the core layer's build
    content = ROOT / _properties(template, "CoreLayer")["ContentUri"]
    makefile = (content / "Makefile").read_text()

    # THEN the package it copies into python/ (Lambda's /opt/python) is the one the tests import
    assert (content / "minidrama" / "__init__.py").is_file()
    assert 'cp -R "$(LAYER_DIR)minidrama" "$(ARTIFACTS_DIR)/python/"' in makefile


@pytest.mark.parametrize(
    ("function", "blocked"),
    [
        ("ingest", ["pyarrow", "duckdb", "weasyprint", "vl_convert"]),
        ("writer", ["duckdb", "weasyprint", "vl_convert"]),
        ("metrics", ["pyarrow", "weasyprint", "vl_convert"]),
        ("report", ["pyarrow", "duckdb"]),
        ("query", ["pyarrow", "weasyprint", "vl_convert", "jinja2"]),
    ],
    ids=["ingest", "writer", "metrics", "report", "query"],
)
def test_each_handler_imports_without_the_layers_it_does_not_get(
    tmp_path: Path, function: str, blocked: list[str]
) -> None:
    # GIVEN a Python where the libraries of the other functions' layers cannot be imported
    handler = ROOT / "functions" / function / "app.py"
    script = (
        "import importlib.util, sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None\n"
        f"spec = importlib.util.spec_from_file_location('handler', {str(handler)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "assert callable(module.lambda_handler)\n"
    )
    environment = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "LAKE_BUCKET": "lake-bucket",
        "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/ingest",
        "SENDER_EMAIL": "reports@example.com",
        "RECOMPUTE_DAYS": "3",
        "READ_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:read-AbCdEf",
    }

    # WHEN the handler module is imported as Lambda imports it
    result = subprocess.run(
        [sys.executable, "-c", script], env=environment, cwd=tmp_path, capture_output=True, text=True
    )

    # THEN it loads: it does not need a library its function's layers do not ship
    assert result.returncode == 0, result.stderr[-2000:]


# --- runtime settings --------------------------------------------------------------------------


def test_globals_set_the_runtime_tracing_and_shared_environment(template: dict[str, Any]) -> None:
    function_globals = template["Globals"]["Function"]

    assert function_globals["Runtime"] == "python3.12"
    assert function_globals["Architectures"] == ["x86_64"]
    assert function_globals["Tracing"] == "Active"
    variables = function_globals["Environment"]["Variables"]
    assert variables["LAKE_BUCKET"] == {"Ref": "LakeBucket"}
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "MiniDrama"
    assert variables["POWERTOOLS_SERVICE_NAME"]


@pytest.mark.parametrize(
    ("function", "variable", "value"),
    [
        ("IngestFunction", "QUEUE_URL", {"Ref": "IngestQueue"}),
        ("MetricsFunction", "RECOMPUTE_DAYS", {"Ref": "RecomputeDays"}),
        ("MetricsFunction", "HOME", "/tmp"),
        ("ReportFunction", "SENDER_EMAIL", {"Ref": "SenderEmail"}),
        ("ReportFunction", "FONTCONFIG_PATH", "/opt/fonts"),
        ("ReportFunction", "READ_TOKEN_SECRET_ARN", {"Ref": "ReadTokenSecret"}),
        ("ReportFunction", "DASHBOARD_LINK_DAYS", {"Ref": "DashboardLinkDays"}),
        ("QueryFunction", "READ_TOKEN_SECRET_ARN", {"Ref": "ReadTokenSecret"}),
        ("QueryFunction", "HOME", "/tmp"),
    ],
)
def test_functions_get_their_environment(
    template: dict[str, Any], function: str, variable: str, value: Any
) -> None:
    assert _properties(template, function)["Environment"]["Variables"][variable] == value


def test_the_report_layer_carries_the_fontconfig_the_function_points_at() -> None:
    # GIVEN the report layer's sources
    report = ROOT / "layers" / "report"

    # THEN fonts.conf (copied to /opt/fonts) lists /opt/fonts and caches in writable /tmp,
    # and the build copies it and the native libraries
    fonts_conf = (report / "fonts.conf").read_text()
    assert "<dir>/opt/fonts</dir>" in fonts_conf
    assert "<cachedir>/tmp/" in fonts_conf
    build = (report / "build.sh").read_text()
    assert '"$out/fonts/fonts.conf"' in build
    assert "libpango-1.0.so.0" in build


def test_the_metrics_function_has_room_for_a_full_recompute(template: dict[str, Any]) -> None:
    metrics = _properties(template, "MetricsFunction")

    assert metrics["MemorySize"] == 3008
    assert metrics["Timeout"] == 900
    assert metrics["EphemeralStorage"] == {"Size": 2048}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_logs_to_a_group_with_retention(template: dict[str, Any], function: str) -> None:
    # GIVEN the log group the function writes to
    group = _properties(template, function)["LoggingConfig"]["LogGroup"]["Ref"]
    resource = _resources(template)[group]

    # THEN logs expire after the configured retention
    assert resource["Type"] == "AWS::Logs::LogGroup"
    assert resource["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


# --- ingestion path ----------------------------------------------------------------------------


def test_the_ingest_function_answers_post_on_the_events_route(template: dict[str, Any]) -> None:
    (api_event,) = _events_of_type(template, "IngestFunction", "Api")

    assert api_event["Path"] == "/v1/apps/{app_id}/events"
    assert api_event["Method"].lower() == "post"
    assert api_event["RestApiId"] == {"Ref": "IngestApi"}
    stage = _properties(template, "IngestApi")["StageName"]
    assert f"/{stage}/v1/apps/{{app_id}}/events" in template["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"]
    # API Gateway gives up after 29 s
    assert _function_setting(template, "IngestFunction", "Timeout") < 29


def test_the_writer_reports_partial_batch_failures(template: dict[str, Any]) -> None:
    # GIVEN the writer's SQS event source
    (sqs_event,) = _events_of_type(template, "WriterFunction", "SQS")
    parameters = template["Parameters"]

    # THEN a failed record is retried alone, not the whole batch
    assert sqs_event["Queue"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert sqs_event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # AND batches are large (SQS allows up to 10,000 with a batching window)
    assert sqs_event["BatchSize"] == {"Ref": "WriterBatchSize"}
    assert sqs_event["MaximumBatchingWindowInSeconds"] == {"Ref": "WriterBatchingWindowSeconds"}
    assert 10 < parameters["WriterBatchSize"]["Default"] <= parameters["WriterBatchSize"]["MaxValue"] <= 10000
    assert parameters["WriterBatchingWindowSeconds"]["Default"] > 0


def test_the_queue_redrives_to_a_dead_letter_queue(template: dict[str, Any]) -> None:
    # GIVEN the ingest queue and the writer
    queue = _properties(template, "IngestQueue")
    writer_timeout = _function_setting(template, "WriterFunction", "Timeout")
    batching_window = template["Parameters"]["WriterBatchingWindowSeconds"]["MaxValue"]

    # THEN a message failing 5 times moves to the dead-letter queue instead of being lost
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    # AND a batch being written is never visible to a second writer (AWS: >= 6x the timeout)
    assert queue["VisibilityTimeout"] >= 6 * writer_timeout
    assert queue["VisibilityTimeout"] >= writer_timeout + batching_window
    # AND the dead letters outlive the source queue's retention
    dead_letters = _properties(template, "IngestDeadLetterQueue")
    assert dead_letters["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]


def test_an_alarm_fires_when_the_dead_letter_queue_holds_a_message(template: dict[str, Any]) -> None:
    alarms = [
        resource["Properties"]
        for resource in _resources(template).values()
        if resource["Type"] == "AWS::CloudWatch::Alarm" and "MetricName" in resource["Properties"]
    ]
    dead_letter_alarms = [
        alarm
        for alarm in alarms
        if alarm["Dimensions"]
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["IngestDeadLetterQueue", "QueueName"]}}]
    ]

    (alarm,) = dead_letter_alarms
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0


# --- the lake bucket and who may touch what ----------------------------------------------------


def test_the_lake_bucket_is_encrypted_private_and_tls_only(template: dict[str, Any]) -> None:
    bucket = _properties(template, "LakeBucket")

    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    policy = _properties(template, "LakeBucketPolicy")
    assert policy["Bucket"] == {"Ref": "LakeBucket"}
    assert {
        "Effect": "Deny",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }.items() <= policy["PolicyDocument"]["Statement"][0].items()


def test_quarantine_expires_after_the_configured_retention(template: dict[str, Any]) -> None:
    rules = _properties(template, "LakeBucket")["LifecycleConfiguration"]["Rules"]

    (quarantine,) = [rule for rule in rules if rule.get("Prefix") == "quarantine/"]
    assert quarantine["Status"] == "Enabled"
    assert quarantine["ExpirationInDays"] == {"Ref": "QuarantineRetentionDays"}
    assert template["Parameters"]["QuarantineRetentionDays"]["Default"] == 90


def test_the_ingest_function_writes_only_quarantine(template: dict[str, Any]) -> None:
    # GIVEN what the public-facing function may do in the bucket
    statements = _statements(template, "IngestFunction")
    writes = [
        s for s in statements if any(a.startswith(("s3:Put", "s3:Delete")) for a in _as_list(s["Action"]))
    ]

    # THEN it writes rejected input and nothing else, and holds no broad S3 template
    assert [w["Resource"] for w in writes] == [{"Fn::Sub": "${LakeBucket.Arn}/quarantine/*"}]
    assert not _policy_templates(template, "IngestFunction") & {
        "S3CrudPolicy",
        "S3WritePolicy",
        "S3FullAccessPolicy",
    }
    assert "SQSSendMessagePolicy" in _policy_templates(template, "IngestFunction")


@pytest.mark.parametrize(
    ("function", "prefixes"),
    [
        ("WriterFunction", {"events/"}),
        ("MetricsFunction", {"metrics/", "state/", "facts/", "events/"}),
        ("ReportFunction", {"reports/", "reports/*/sent/"}),
    ],
)
def test_each_job_writes_only_its_own_areas_of_the_lake(
    template: dict[str, Any], function: str, prefixes: set[str]
) -> None:
    resources = [
        resource
        for statement in _statements(template, function)
        if any(action.startswith(("s3:Put", "s3:Delete")) for action in _as_list(statement["Action"]))
        for resource in _as_list(statement["Resource"])
    ]
    written = {
        resource["Fn::Sub"].removeprefix("${LakeBucket.Arn}/").removesuffix("*") for resource in resources
    }

    assert written == prefixes
    assert not _policy_templates(template, function) & {"S3CrudPolicy", "S3WritePolicy", "S3FullAccessPolicy"}


def test_the_report_function_may_send_mail_only_as_the_sender(template: dict[str, Any]) -> None:
    (send,) = [
        s for s in _statements(template, "ReportFunction") if "ses:SendRawEmail" in _as_list(s["Action"])
    ]

    assert all("identity/" in str(resource) for resource in send["Resource"])
    assert "${SenderEmail}" in send["Resource"][0]["Fn::Sub"]


# --- schedules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "parameter", "default"),
    [
        ("MetricsFunction", "MetricsSchedule", "cron(5 * * * ? *)"),
        ("ReportFunction", "ReportSchedule", "cron(20 * * * ? *)"),
    ],
)
def test_the_daily_jobs_run_on_their_schedules(
    template: dict[str, Any], function: str, parameter: str, default: str
) -> None:
    (schedule,) = _events_of_type(template, function, "Schedule")

    assert schedule["Schedule"] == {"Ref": parameter}
    assert template["Parameters"][parameter]["Default"] == default


def test_both_jobs_run_hourly_and_the_report_after_the_metrics(template: dict[str, Any]) -> None:
    # GIVEN the default schedules "cron(M * * * ? *)": every hour at minute M
    def minute(parameter: str) -> int:
        minute, hour = template["Parameters"][parameter]["Default"].removeprefix("cron(").split()[:2]
        assert hour == "*", f"{parameter} must run every hour (apps are served at their local hour)"
        return int(minute)

    # THEN within each hour the report job starts after the metrics job has had 15 minutes
    assert minute("ReportSchedule") - minute("MetricsSchedule") >= 15


# --- sample triggers ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLE_EVENTS)
def test_sample_triggers_exist_for_the_functions(name: str) -> None:
    assert (ROOT / "events" / f"{name}.json").is_file()


# --- API access logs ---------------------------------------------------------------------------


def test_the_api_writes_a_json_access_log_to_a_group_with_retention(template: dict[str, Any]) -> None:
    # GIVEN the API's access log setting
    setting = _properties(template, "IngestApi")["AccessLogSetting"]
    group = _resources(template)[setting["DestinationArn"]["Fn::GetAtt"][0]]

    # THEN it goes to a log group of the stack that expires with the functions' logs
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    # AND each request is one line of JSON (messageString is API Gateway's own quoted string)
    line = setting["Format"]
    assert "\n" not in line
    record = json.loads(line.replace("$context.error.messageString", '"message"'))
    assert record["requestId"] == "$context.requestId"
    assert {"status", "ip", "path", "responseLatency", "integrationStatus", "errorType"} <= record.keys()
    # AND no header or key is logged: x-api-key is the app's secret
    assert not re.search(r"apiKey|header|requestOverride|\$input", line, re.IGNORECASE)


def test_the_region_gets_a_logging_role_for_api_gateway_unless_it_has_one(template: dict[str, Any]) -> None:
    # GIVEN the role API Gateway writes logs with, and the account setting naming it
    resources = _resources(template)
    role, account = resources["ApiGatewayCloudWatchRole"], resources["ApiGatewayAccount"]
    condition = template["Conditions"]["CreateApiGatewayLoggingRole"]

    # THEN both exist only with ApiGatewayLoggingRole=create (the default): "existing" leaves the
    # account's own setting alone
    assert role["Condition"] == account["Condition"] == "CreateApiGatewayLoggingRole"
    assert condition == {"Fn::Equals": [{"Ref": "ApiGatewayLoggingRole"}, "create"]}
    assert template["Parameters"]["ApiGatewayLoggingRole"]["Default"] == "create"
    assert account["Properties"]["CloudWatchRoleArn"] == {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]}
    # AND only API Gateway may assume the role, which holds AWS's logging policy and nothing else
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {
        "Effect": "Allow",
        "Principal": {"Service": "apigateway.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    assert role["Properties"]["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"}
    ]
    assert "Policies" not in role["Properties"]
    # AND it outlives the stack: other APIs of the region log through the same setting
    assert role["DeletionPolicy"] == role["UpdateReplacePolicy"] == "Retain"


def test_the_api_stage_is_created_after_the_account_logging_setting(template: dict[str, Any]) -> None:
    # GIVEN what the API depends on
    resources = _resources(template)
    handle = resources[resources["IngestApi"]["DependsOn"]]

    # THEN it is a handle that references the account setting when the stack creates it (a stage
    # with access logs fails without the setting; DependsOn cannot name a conditional resource)
    assert handle["Type"] == "AWS::CloudFormation::WaitConditionHandle"
    assert "Condition" not in handle
    assert {"Fn::If": ["CreateApiGatewayLoggingRole", {"Ref": "ApiGatewayAccount"}, "existing"]} in handle[
        "Metadata"
    ].values()


# --- daily jobs that fail ----------------------------------------------------------------------

DAILY_JOBS = ["MetricsFunction", "ReportFunction"]


def _rule_arn(name: Any) -> dict[str, str]:
    """The ARN of an EventBridge rule of this account and region named ``name`` (a !Sub)."""
    return {
        "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/" + name["Fn::Sub"]
    }


@pytest.mark.parametrize("function", DAILY_JOBS)
def test_a_daily_run_that_fails_its_retries_goes_to_the_failure_queue(
    template: dict[str, Any], function: str
) -> None:
    # GIVEN how Lambda handles the function's asynchronous (scheduled) invocations
    config = _properties(template, function)["EventInvokeConfig"]

    # THEN after Lambda's retries the failure record (error and scheduled event) goes to the queue
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["DailyJobFailureQueue", "Arn"]},
    }
    assert 0 < config["MaximumRetryAttempts"] <= 2
    # AND a run is given up well before the next day's run
    assert config["MaximumEventAgeInSeconds"] <= 6 * 3600


@pytest.mark.parametrize("function", DAILY_JOBS)
def test_a_schedule_that_cannot_invoke_its_function_dead_letters_to_the_same_queue(
    template: dict[str, Any], function: str
) -> None:
    # GIVEN the function's schedule (an EventBridge rule targeting it)
    (schedule,) = _events_of_type(template, function, "Schedule")

    # THEN an event EventBridge could not deliver within an hour lands in the failure queue
    assert schedule["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DailyJobFailureQueue", "Arn"]}}
    assert schedule["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 3600
    # AND the queue's policy lets exactly this rule send there
    (statement,) = _properties(template, "DailyJobFailureQueuePolicy")["PolicyDocument"]["Statement"]
    assert _rule_arn(schedule["Name"]) in statement["Condition"]["ArnEquals"]["aws:SourceArn"]


def test_only_the_two_schedules_may_send_to_the_failure_queue(template: dict[str, Any]) -> None:
    # GIVEN the failure queue's resource policy and the two schedules' rule names
    policy = _properties(template, "DailyJobFailureQueuePolicy")
    names = [_events_of_type(template, function, "Schedule")[0]["Name"] for function in DAILY_JOBS]

    # THEN EventBridge may send messages to it, only on behalf of those two rules, and nothing else
    # (the functions write their failure records with their own roles: SAM grants each
    # sqs:SendMessage on this queue alone for its EventInvokeConfig)
    assert policy["Queues"] == [{"Ref": "DailyJobFailureQueue"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == {"Fn::GetAtt": ["DailyJobFailureQueue", "Arn"]}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": [_rule_arn(name) for name in names]}}


def test_an_alarm_fires_when_a_daily_run_did_not_complete(template: dict[str, Any]) -> None:
    # GIVEN the alarms on the failure queue
    (alarm,) = [
        resource["Properties"]
        for resource in _resources(template).values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and resource["Properties"].get("Dimensions")
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DailyJobFailureQueue", "QueueName"]}}]
    ]

    # THEN one message is enough, and it notifies the alarm topic when there is one
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"] == {
        "Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]
    }
    # AND the failure records are kept as long as SQS keeps anything: time to fix and replay
    assert _properties(template, "DailyJobFailureQueue")["MessageRetentionPeriod"] == 14 * 24 * 3600


# --- what a stack deletion or replacement keeps ------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "policy"),
    [
        ("LakeBucket", "Retain"),  # the lake
        ("IngestQueue", "Retain"),  # accepted (acknowledged) events not yet written
        ("IngestDeadLetterQueue", "Retain"),  # accepted events the writer failed to store
        ("DailyJobFailureQueue", "Delete"),  # failure reports: the lake still has everything
        ("IngestLogGroup", "Delete"),  # logs expire anyway, and a kept group would block a
        ("WriterLogGroup", "Delete"),  # new stack of the same name (the names are fixed)
        ("MetricsLogGroup", "Delete"),
        ("ReportLogGroup", "Delete"),
        ("ApiAccessLogGroup", "Delete"),
    ],
)
def test_data_is_retained_and_the_rest_deleted_with_the_stack(
    template: dict[str, Any], resource: str, policy: str
) -> None:
    attributes = _resources(template)[resource]

    assert (attributes["DeletionPolicy"], attributes["UpdateReplacePolicy"]) == (policy, policy)


def test_every_bucket_queue_and_log_group_states_what_deletion_does(template: dict[str, Any]) -> None:
    # GIVEN every resource that holds data or logs
    holders = {
        name: resource
        for name, resource in _resources(template).items()
        if resource["Type"] in {"AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::Logs::LogGroup"}
    }

    # THEN none relies on CloudFormation's default: a new one must choose
    assert len(holders) >= 9  # the nine of the table above, and any added since
    undecided = [
        name
        for name, resource in holders.items()
        if not {"DeletionPolicy", "UpdateReplacePolicy"} <= resource.keys()
    ]
    assert undecided == []


# --- the read API ------------------------------------------------------------------------------

READ_ROUTES = {
    ("/v1/apps/{app_id}/metrics", "get"),
    ("/v1/apps/{app_id}/metrics/daily", "get"),
    ("/v1/apps/{app_id}/metrics/days", "get"),
    ("/v1/apps/{app_id}/dashboard", "get"),
    ("/v1/dashboard/{name}", "get"),
}


def test_the_query_function_answers_the_read_routes_on_the_same_api(template: dict[str, Any]) -> None:
    routes = _events_of_type(template, "QueryFunction", "Api")

    assert {(route["Path"], route["Method"]) for route in routes} == READ_ROUTES
    assert all(route["RestApiId"] == {"Ref": "IngestApi"} for route in routes)
    # THEN API Gateway's 29 s is not outlived
    assert _properties(template, "QueryFunction")["Timeout"] < 29


def test_the_query_function_only_reads_facts_documents_and_config(template: dict[str, Any]) -> None:
    statements = _statements(template, "QueryFunction")
    actions = {action for statement in statements for action in _as_list(statement["Action"])}
    (get,) = [s for s in statements if "s3:GetObject" in _as_list(s["Action"])]

    # THEN it may read three areas of the lake (not events, not quarantine) and write nothing
    assert actions == {"s3:GetObject", "s3:ListBucket"}
    assert {r["Fn::Sub"] for r in get["Resource"]} == {
        "${LakeBucket.Arn}/facts/*",
        "${LakeBucket.Arn}/metrics/*",
        "${LakeBucket.Arn}/config/*",
    }
    assert _policy_templates(template, "QueryFunction") == {"AWSSecretsManagerGetSecretValuePolicy"}


def test_the_read_secret_is_generated_by_the_stack_and_read_by_two_functions(
    template: dict[str, Any],
) -> None:
    secret = _resources(template)["ReadTokenSecret"]
    readers = [
        name
        for name in FUNCTIONS
        for policy in _properties(template, name).get("Policies", [])
        if isinstance(policy, dict) and "AWSSecretsManagerGetSecretValuePolicy" in policy
    ]

    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    assert sorted(readers) == ["QueryFunction", "ReportFunction"]
    assert template["Parameters"]["DashboardLinkDays"]["Default"] == 14


def test_the_api_sends_no_cors_headers(template: dict[str, Any]) -> None:
    # CORS closed by default: no Cors setting, so no browser page of another origin can read
    assert "Cors" not in _properties(template, "IngestApi")
    assert "Cors" not in template["Globals"].get("Api", {})


def test_an_alarm_fires_when_a_day_had_no_events(template: dict[str, Any]) -> None:
    alarm = _properties(template, "ReportsWithoutEventsAlarm")
    source = (ROOT / "functions" / "report" / "app.py").read_text()

    assert (alarm["Namespace"], alarm["MetricName"]) == ("MiniDrama", "ReportsWithoutEvents")
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert 'name="ReportsWithoutEvents"' in source
