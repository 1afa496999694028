"""template.yaml's catalog: the lake's tables in Glue (partition projection) and the Athena workgroup.

CloudFormation cannot import Python, so the template lists every table's columns; these tests hold
them to what the code writes. A small lake is written through the real code (the writer, the
compaction and the metrics engine), each Parquet file's footer is read back and mapped from Arrow to
Hive types, and the template must declare exactly those columns, name by name and type by type.
Changing a column on either side fails here. Partition locations are checked against the layout
functions of ``minidrama.lake`` and ``minidrama.metrics.facts``, by building real keys.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cfnlint.decode import cfn_yaml

from minidrama.config import AppConfig
from minidrama.lake import LocalStorage, events_key, events_partition, metrics_key
from minidrama.metrics import compute_days
from minidrama.metrics.compaction import COMPACTED_PREFIX, compact_partition
from minidrama.metrics.facts import ALL_TABLES, FactsIndex, facts_key, table_prefix
from minidrama.writer import EVENTS_SCHEMA
from tests.metrics_support import event, ingest

ROOT = Path(__file__).resolve().parents[2]

APP = "app"
DAY = date(2026, 11, 10)
BUCKET = "lake-bucket-name"

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
ION_SERDE = "com.amazon.ionhiveserde.IonHiveSerDe"

# Glue table name -> where its files are under the lake (one table per stored-facts table).
TABLE_PREFIXES = {
    "events": "events/",
    "daily_metrics": "metrics/",
    **{f"facts_{table}": f"facts/{table}/" for table in ALL_TABLES},
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_yaml.load(str(ROOT / "template.yaml"))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A lake written by the real code, and the schema of every Parquet file as it was written.

    Hour 08 gets two writer files, then is compacted (DuckDB rewrites it); hour 09 keeps its
    writer file; the day is computed (the engine writes every facts table and the document).
    """
    lake = LocalStorage(tmp_path_factory.mktemp("catalog") / "lake")
    launch = {"entry_point": "feed", "success": True, "launch_ms": 900, "gender": "female"}
    ingest(lake, [event("e1", "app_launch", "2026-11-10T08:00:00Z", "u1", **launch)])
    ingest(
        lake,
        [
            event("e2", "app_launch", "2026-11-10T08:10:00Z", "u2", os="android", region="GB", **launch),
            event("e3", "entrance_exposure", "2026-11-10T08:11:00Z", "u2", os="android", region="GB"),
        ],
    )
    ingest(
        lake,
        [
            event("e4", "session_end", "2026-11-10T09:00:00Z", "u1", session="s-e1", duration_ms=60000),
            event(
                "e5",
                "recharge_order",
                "2026-11-10T09:05:00Z",
                "u1",
                order_id="o1",
                amount=4.99,
                currency="USD",
                beans=100,
                product_id="p1",
            ),
        ],
    )
    writer_files = {info.key: pq.read_schema(lake.path(info.key)) for info in lake.list("events/")}
    assert compact_partition(lake, APP, DAY, 8)
    compacted = [info.key for info in lake.list("events/") if COMPACTED_PREFIX in info.key]
    compute_days(lake, AppConfig(APP), [DAY])
    index = FactsIndex.load(lake, APP, "UTC")
    return {
        "lake": lake,
        "writer": writer_files,
        "compacted": {key: pq.read_schema(lake.path(key)) for key in compacted},
        "facts": {table: pq.read_schema(lake.path(entry.key)) for table, entry in index.days[DAY].items()},
        "document": lake.get_bytes(metrics_key(APP, DAY)),
    }


# --- reading the template -----------------------------------------------------------------------


def _glue_tables(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Glue table name -> the resource's properties."""
    return {
        resource["Properties"]["TableInput"]["Name"]: resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Glue::Table"
    }


def _table_input(template: dict[str, Any], name: str) -> dict[str, Any]:
    return _glue_tables(template)[name]["TableInput"]


def _columns(table_input: dict[str, Any]) -> list[tuple[str, str]]:
    return [(column["Name"], column["Type"]) for column in table_input["StorageDescriptor"]["Columns"]]


def _partition_keys(table_input: dict[str, Any]) -> list[tuple[str, str]]:
    return [(column["Name"], column["Type"]) for column in table_input["PartitionKeys"]]


def _sub(value: Any, template: dict[str, Any]) -> str:
    """A ``!Sub`` string as CloudFormation resolves it: the bucket and parameter defaults filled in,
    ``${!name}`` left as the literal ``${name}`` (Athena's projection placeholders)."""
    assert isinstance(value, dict) and set(value) == {"Fn::Sub"}, value
    names = {"LakeBucket": BUCKET, **{k: str(p.get("Default")) for k, p in template["Parameters"].items()}}

    def resolve(match: re.Match[str]) -> str:
        bang, name = match.groups()
        return "${" + name + "}" if bang else names[name]

    return re.sub(r"\$\{(!?)([^}]+)\}", resolve, value["Fn::Sub"])


def _project(location_template: str, values: dict[str, str]) -> str:
    """What Athena puts in the location template for one partition; every placeholder must be filled."""
    filled = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], location_template)
    assert "${" not in filled
    return filled


def _hive_type(arrow: pa.DataType) -> str:
    """The Hive/Athena type that reads a Parquet column of this Arrow type as the code means it."""
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
        return "string"
    if pa.types.is_boolean(arrow):
        return "boolean"
    if pa.types.is_int64(arrow):
        return "bigint"
    if pa.types.is_int32(arrow):
        return "int"
    if pa.types.is_float64(arrow):
        return "double"
    if pa.types.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    if pa.types.is_date32(arrow):
        return "date"
    # Instants: stored adjusted to UTC, so Athena reads the same instant whatever its session zone.
    if pa.types.is_timestamp(arrow) and arrow.tz == "UTC":
        return "timestamp"
    if pa.types.is_list(arrow):
        return f"array<{_hive_type(arrow.value_type)}>"
    raise AssertionError(
        f"no Hive type is declared for the Arrow type {arrow}: extend the mapping and the template"
    )


def _hive_columns(schema: pa.Schema) -> list[tuple[str, str]]:
    return [(field.name, _hive_type(field.type)) for field in schema]


# --- the database and its tables ------------------------------------------------------------------


def test_the_stack_declares_the_lake_database_named_by_a_parameter(template: dict[str, Any]) -> None:
    database = template["Resources"]["LakeDatabase"]

    assert database["Type"] == "AWS::Glue::Database"
    assert database["Properties"]["DatabaseInput"]["Name"] == {"Ref": "GlueDatabaseName"}
    assert template["Parameters"]["GlueDatabaseName"]["Default"] == "minidrama"
    assert all(table["DatabaseName"] == {"Ref": "LakeDatabase"} for table in _glue_tables(template).values())


def test_the_catalog_has_the_events_every_facts_table_and_the_daily_documents(
    template: dict[str, Any],
) -> None:
    # GIVEN the facts tables the engine writes (minidrama.metrics.facts.ALL_TABLES)
    # THEN each has a Glue table, beside the events and the daily documents, and nothing else
    assert set(_glue_tables(template)) == set(TABLE_PREFIXES)
    for name, prefix in TABLE_PREFIXES.items():
        table_input = _table_input(template, name)
        assert table_input["TableType"] == "EXTERNAL_TABLE"
        assert _sub(table_input["StorageDescriptor"]["Location"], template) == f"s3://{BUCKET}/{prefix}"


def test_the_events_table_has_the_columns_every_events_file_has(
    template: dict[str, Any], written: dict[str, Any]
) -> None:
    # GIVEN the columns of the files the writer wrote, of the file compaction wrote, and the
    # writer's declared Arrow schema
    declared = _columns(_table_input(template, "events"))
    schemas = {**written["writer"], **written["compacted"], "writer.EVENTS_SCHEMA": EVENTS_SCHEMA}
    assert written["writer"] and written["compacted"]

    # THEN the template declares exactly those, in the files' order, with the matching Hive types
    for source, schema in schemas.items():
        assert declared == _hive_columns(schema), source


@pytest.mark.parametrize("table", sorted(ALL_TABLES))
def test_each_facts_table_has_the_columns_the_engine_writes(
    template: dict[str, Any], written: dict[str, Any], table: str
) -> None:
    declared = _columns(_table_input(template, f"facts_{table}"))

    assert declared == _hive_columns(written["facts"][table])


@pytest.mark.parametrize("name", sorted(TABLE_PREFIXES))
def test_partition_values_are_keys_of_the_path_and_never_columns(template: dict[str, Any], name: str) -> None:
    table_input = _table_input(template, name)
    expected = [("app_id", "string"), ("dt", "string")] + ([("hour", "int")] if name == "events" else [])

    assert _partition_keys(table_input) == expected
    # Athena refuses a table whose partition key is also a column (the files hold none of them)
    assert not {key for key, _ in expected} & {column for column, _ in _columns(table_input)}


def test_parquet_tables_read_parquet_and_the_documents_table_reads_multi_line_json(
    template: dict[str, Any], written: dict[str, Any]
) -> None:
    for name in TABLE_PREFIXES:
        serde = _table_input(template, name)["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
        assert serde == (ION_SERDE if name == "daily_metrics" else PARQUET_SERDE), name

    # The documents are pretty-printed: one object over many lines, which the Hive and OpenX JSON
    # SerDes cannot read (one object per line) and the Ion SerDe can (Ion is a superset of JSON).
    assert written["document"].strip().count(b"\n") > 1


def test_the_documents_table_has_the_documents_top_level_keys(
    template: dict[str, Any], written: dict[str, Any]
) -> None:
    document = json.loads(written["document"])
    declared = dict(_columns(_table_input(template, "daily_metrics")))
    json_types = {int: "int", str: "string"}

    # app_id is the partition key (the same value); segments, a nested tree, is left out
    assert set(document) == set(declared) | {"app_id", "segments"}
    assert document["app_id"] == APP and document["date"] == DAY.isoformat()
    assert {key: json_types[type(document[key])] for key in declared} == declared


# --- partition projection -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TABLE_PREFIXES))
def test_partitions_are_projected_with_injected_apps_and_utc_day_ranges(
    template: dict[str, Any], name: str
) -> None:
    parameters = _table_input(template, name)["Parameters"]

    assert parameters["projection.enabled"] == "true"
    # apps are registered at any time: not enumerable, so each query names its app
    assert parameters["projection.app_id.type"] == "injected"
    assert parameters["projection.dt.type"] == "date"
    assert parameters["projection.dt.format"] == "yyyy-MM-dd"
    assert (parameters["projection.dt.interval"], parameters["projection.dt.interval.unit"]) == ("1", "DAYS")
    # from the parameter's day to the day after the query's (see the next tests)
    assert parameters["projection.dt.range"] == {"Fn::Sub": "${CatalogFirstDay},NOW+1DAYS"}
    hour = {key: value for key, value in parameters.items() if key.startswith("projection.hour.")}
    if name == "events":
        # hour=00 ... hour=23, as events_partition writes it
        assert hour == {
            "projection.hour.type": "integer",
            "projection.hour.range": "0,23",
            "projection.hour.digits": "2",
        }
    else:
        assert hour == {}


@pytest.mark.parametrize(
    ("app_id", "day", "hour"), [("my-app.v2_1", date(2026, 11, 10), 7), ("a", date(1970, 1, 1), 23)]
)
def test_the_location_templates_are_the_lake_layout(
    template: dict[str, Any], app_id: str, day: date, hour: int
) -> None:
    # GIVEN one partition's values as Athena renders them (hour with projection.hour.digits)
    def location(name: str) -> str:
        parameters = _table_input(template, name)["Parameters"]
        digits = int(parameters.get("projection.hour.digits", "1"))
        values = {"app_id": app_id, "dt": day.isoformat(), "hour": f"{hour:0{digits}d}"}
        return _project(_sub(parameters["storage.location.template"], template), values)

    lake = f"s3://{BUCKET}/"
    # THEN each template names the directory the code writes that partition's files to
    assert location("events") == lake + events_partition(app_id, day, hour)
    assert (lake + events_key(app_id, day, hour, "x")).startswith(location("events"))
    assert location("daily_metrics") + "metrics.json" == lake + metrics_key(app_id, day)
    for table in ALL_TABLES:
        key = facts_key(table, app_id, day, "0" * 64)
        assert location(f"facts_{table}") == lake + key.rsplit("/", 1)[0] + "/"
        assert location(f"facts_{table}").startswith(lake + table_prefix(table, app_id))


def test_the_written_lake_has_its_files_where_the_tables_look(
    template: dict[str, Any], written: dict[str, Any]
) -> None:
    # GIVEN every file the fixture's lake holds under a table's prefix
    lake: LocalStorage = written["lake"]
    templates = {
        name: _sub(_table_input(template, name)["Parameters"]["storage.location.template"], template)
        for name in TABLE_PREFIXES
    }
    # THEN each lies directly in the projected location of its own partition
    for name, prefix in TABLE_PREFIXES.items():
        keys = [info.key for info in lake.list(prefix) if "/dt=" in info.key]
        assert keys, name
        for key in keys:
            directory, _file = key.rsplit("/", 1)
            values = dict(re.findall(r"(app_id|dt|hour)=([^/]+)", directory))
            assert f"s3://{BUCKET}/{directory}/" == _project(templates[name], values), key


def test_the_dt_range_holds_every_day_ingestion_writes(template: dict[str, Any], lake: LocalStorage) -> None:
    # GIVEN events at the Unix epoch (a device whose clock was reset) and 24 h after receipt (the
    # latest event_time ingestion accepts), received late in a UTC day
    received = datetime(2026, 11, 10, 23, 30, tzinfo=UTC)
    ingest(
        lake,
        [
            event("epoch", "app_launch", "1970-01-01T00:00:00Z", "u1", entry_point="feed"),
            event(
                "ahead", "app_launch", (received + timedelta(hours=24)).isoformat(), "u1", entry_point="feed"
            ),
        ],
        received_at=received,
    )
    days = sorted(
        date.fromisoformat(m)
        for m in re.findall(r"/dt=([^/]+)/", " ".join(i.key for i in lake.list("events/")))
    )

    # THEN both days are inside the projected range: from CatalogFirstDay to the day after NOW
    first = date.fromisoformat(template["Parameters"]["CatalogFirstDay"]["Default"])
    assert first <= days[0] == date(1970, 1, 1)
    assert days[-1] == received.date() + timedelta(days=1)  # hence NOW+1DAYS, not NOW


# --- the workgroup --------------------------------------------------------------------------------


def test_the_workgroup_enforces_a_scan_cutoff_and_encrypted_results_in_the_lake(
    template: dict[str, Any],
) -> None:
    workgroup = template["Resources"]["LakeWorkGroup"]
    configuration = workgroup["Properties"]["WorkGroupConfiguration"]
    results = configuration["ResultConfiguration"]

    assert workgroup["Type"] == "AWS::Athena::WorkGroup"
    # THEN clients cannot override the workgroup's settings (output, encryption, cutoff)
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["BytesScannedCutoffPerQuery"] == {"Ref": "AthenaBytesScannedCutoffPerQuery"}
    cutoff = template["Parameters"]["AthenaBytesScannedCutoffPerQuery"]
    assert cutoff["Default"] == 10_000_000_000 and cutoff["MinValue"] == 10_000_000  # Athena's minimum
    # THEN results stay in the lake bucket, encrypted, under a prefix that expires
    assert results["OutputLocation"] == {"Fn::Sub": "s3://${LakeBucket}/athena-results/"}
    assert results["EncryptionConfiguration"]["EncryptionOption"] == "SSE_S3"
    rules = template["Resources"]["LakeBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (expiry,) = [rule for rule in rules if rule.get("Prefix") == "athena-results/"]
    assert expiry["Status"] == "Enabled"
    assert expiry["ExpirationInDays"] == {"Ref": "AthenaResultRetentionDays"}


def test_the_outputs_name_the_database_and_the_workgroup(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]

    assert outputs["GlueDatabaseName"]["Value"] == {"Ref": "LakeDatabase"}
    assert outputs["AthenaWorkGroupName"]["Value"] == {"Ref": "LakeWorkGroup"}
