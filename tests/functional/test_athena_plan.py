"""The Athena engine's plan computes the same day as the embedded engine.

The plan (``minidrama.metrics.athena``) replaces the embedded engine's state (rollups, day facts)
with history read from the events table, each ``event_id`` once per calendar day. Its statements
are run here on DuckDB, in the dialect they are written in, over the lake's events as the Glue
table shows them (every file, hive partitions ``app_id``, ``dt``, ``hour``; copies included), the
way the state machine runs them on Athena: stage by stage, tables created as selects, results
unloaded as Parquet under the run's prefix. ``assemble_day`` then writes the day from those files.
The document must equal the embedded engine's (all but ``generated_at`` and ``engine``), and the
stored facts tables must hold the same rows.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import tempfile
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from hypothesis import HealthCheck, Phase, given, settings

from minidrama.config import AppConfig
from minidrama.lake import LocalStorage, metrics_key
from minidrama.metrics import compute_days
from minidrama.metrics import facts as stored
from minidrama.metrics.athena import assemble_day, plan_day, plan_from_payload
from tests.functional.test_metrics_oracle import ALL_DAYS, scenarios
from tests.metrics_support import ingest, without_generated_at

BUCKET = "lake"
DATABASE = "minidrama"


def run_plan_on_duckdb(root: Path, plan) -> list[str]:
    """What the state machine does on Athena, on DuckDB: every stage's statements in order. Like
    Athena, a statement with no rows leaves no file; the names of those statements."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(f"CREATE SCHEMA {DATABASE}")
    events = root / "events"
    connection.execute(
        f"CREATE VIEW {DATABASE}.events AS SELECT * FROM read_parquet('{events}/**/*.parquet', "
        "hive_partitioning = true, hive_types = {'app_id': VARCHAR, 'dt': VARCHAR, 'hour': INTEGER}, "
        "union_by_name = true)"
    )
    local = f"s3://{BUCKET}/"
    empty: list[str] = []
    for stage in plan.stages:
        for statement in stage:
            query = plan.query(statement, "duckdb")
            target = root / statement.location.removeprefix(local)
            target.mkdir(parents=True, exist_ok=True)
            if statement.kind == "table":
                connection.execute(query)
                table = f"{DATABASE}.{plan.table(statement.name)}"
                connection.execute(f"COPY {table} TO '{target / 'part-0.parquet'}' (FORMAT parquet)")
            else:
                connection.execute(re.sub(r"TO '[^']+'", f"TO '{target / 'part-0.parquet'}'", query))
            if pq.ParquetFile(target / "part-0.parquet").metadata.num_rows == 0:
                (target / "part-0.parquet").unlink()
                empty.append(statement.name)
    connection.close()
    return empty


def facts_rows(lake: LocalStorage, app: AppConfig, day) -> dict[str, list]:
    """The rows of each stored facts table of ``day``, as the facts index names its files."""
    index = stored.FactsIndex.load(lake, app.app_id, app.timezone)
    return {
        table: sorted(pq.read_table(lake.path(entry.key)).to_pylist(), key=repr)
        for table, entry in index.days[day].items()
    }


@settings(
    max_examples=2,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenario=scenarios())
def test_the_athena_plan_gives_the_embedded_engines_day(scenario):
    # GIVEN a lake of random realistic events (re-sent copies, late orders, DST, four zones)
    # every day computed by the embedded engine
    events, zone_name, currency, days, _one_call = scenario
    app = AppConfig("app", timezone=zone_name, currency=currency)
    root = Path(tempfile.mkdtemp(prefix="athena-plan-"))
    try:
        lake = LocalStorage(root)
        ingest(lake, copy.deepcopy(events), app)
        # and every fifth event sent again in a later call: copies in the lake, as Athena reads them
        ingest(lake, copy.deepcopy(events[::5]), app)
        compute_days(lake, app, ALL_DAYS)
        for day in days:
            embedded = json.loads(lake.get_bytes(metrics_key(app.app_id, day)))
            embedded_facts = facts_rows(lake, app, day)
            # retention's stored counts are the embedded engine's alone (ranges over a day without
            # them work retention out from the launches)
            embedded_facts.pop("retention")
            # WHEN the day is computed again by the Athena engine's plan
            plan = plan_day(app, day, bucket=BUCKET, database=DATABASE)
            empty = run_plan_on_duckdb(root, plan)
            assert empty, "every day of the scenarios has statements without rows (no file, as on Athena)"
            assemble_day(lake, app, plan)
            # THEN the document is the embedded engine's, recorded as Athena's, and so are the facts
            athena = json.loads(lake.get_bytes(metrics_key(app.app_id, day)))
            assert (embedded.pop("engine"), athena.pop("engine")) == ("duckdb", "athena")
            assert without_generated_at(athena) == without_generated_at(embedded), f"{day} ({zone_name})"
            assert facts_rows(lake, app, day) == embedded_facts, f"{day} ({zone_name})"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_athena_plan_fits_a_state_machine_input():
    # Step Functions passes at most 256 KiB between states: the plan's queries, as Athena gets them
    plan = plan_day(
        AppConfig("an-app-with-a-long-name", timezone="America/Los_Angeles"),
        ALL_DAYS[-1],
        bucket="a-bucket",
        database=DATABASE,
    )
    payload = plan.payload("athena")
    size = len(json.dumps(payload).encode())
    assert size < 200 * 1024, size
    # every statement is a CTAS into the run's prefix or an UNLOAD of rows there
    queries = [item["query"] for stage in payload["stages"] for item in stage]
    assert all(q.startswith(("CREATE TABLE minidrama.run_", "UNLOAD (")) for q in queries)
    assert all("s3://a-bucket/athena-runs/app_id=an-app-with-a-long-name/" in q for q in queries)
    # Athena writes no `timestamp with time zone` to Parquet: instants are UTC timestamps
    assert not any("WITH TIME ZONE" in q for q in queries)
    # the assembly rebuilds the very plan the state machine ran from its input (same run, same queries)
    again = plan_from_payload(
        payload, AppConfig("an-app-with-a-long-name", timezone="America/Los_Angeles"), "a-bucket"
    )
    assert again.payload("athena") == payload
