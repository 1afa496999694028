"""`minidrama demo`, the README's first command: the whole pipeline on a local lake, and its lake handling."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest

from minidrama.demo import DEMO_APP_ID, MARKER_NAME, DemoLakeError, prepare_lake
from minidrama.lake import events_key
from tests.e2e.conftest import DemoRun
from tests.e2e.serving import serving


def _run_demo(out: Path, days: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "minidrama", "demo", "--out", str(out), "--days", str(days), *extra],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _printed_paths(text: str) -> list[Path]:
    """Absolute paths in the output (after a space or curl's ``@``; URLs are not paths)."""
    return [Path(match) for match in re.findall(r"(?:(?<=\s)|(?<=@))(/[^\s'\"]+)", text)]


def _count(label: str, text: str) -> int:
    match = re.search(rf"^\s+{label}\s+([\d,]+)\s+->", text, re.MULTILINE)
    assert match, f"no '{label}' count in the demo's output"
    return int(match.group(1).replace(",", ""))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_runs_the_pipeline_and_says_where_everything_is(demo_run: DemoRun) -> None:
    # GIVEN an empty output directory WHEN a newcomer runs the demo for five weeks
    out, completed = demo_run.out, demo_run.completed
    # THEN it succeeds
    assert completed.returncode == 0, completed.stderr
    text = completed.stdout
    lake = out / "lake"

    # AND every file or directory it names exists
    printed = _printed_paths(text)
    assert printed
    for path in printed:
        assert path.exists(), f"the demo printed {path}, which does not exist"

    # AND the events went through ingestion: most accepted into Parquet, the bad ones quarantined
    sent = int(re.search(r"Sent ([\d,]+) events", text).group(1).replace(",", ""))  # type: ignore[union-attr]
    accepted, rejected = _count("accepted", text), _count("rejected", text)
    assert accepted + rejected == sent
    assert 0.002 < rejected / sent < 0.01
    assert list((lake / "events" / f"app_id={DEMO_APP_ID}").rglob("*.parquet"))
    quarantined = list((lake / "quarantine" / f"app_id={DEMO_APP_ID}").rglob("*.jsonl"))
    lines = [json.loads(line) for path in quarantined for line in path.read_text().splitlines()]
    assert len(lines) == rejected
    assert all(line["errors"] for line in lines)
    assert str(lake / "quarantine" / f"app_id={DEMO_APP_ID}") in text

    # AND there is one metrics document per day, 35 consecutive days
    documents = sorted((lake / "metrics" / f"app_id={DEMO_APP_ID}").glob("dt=*/metrics.json"))
    assert len(documents) == 35
    first, last = json.loads(documents[0].read_text()), json.loads(documents[-1].read_text())
    assert (first["app_id"], first["timezone"], first["currency"]) == (
        DEMO_APP_ID,
        "America/Los_Angeles",
        "USD",
    )
    assert str(documents[0]) in text and str(documents[-1]) in text
    everyone = last["segments"]["all"]
    assert 1_000 <= everyone["dashboard"]["active_users"] <= 3_000
    assert 0.3 <= everyone["retention"]["new"]["d1"]["rate"] <= 0.5
    assert everyone["iap_users"]["paying_users"] > 0 and everyone["iap_orders"]["all"]["gmv"] > 0
    assert {"os:ios", "os:android", "region:US", "region:PH"} <= set(last["segments"])
    assert "region:XX1" not in last["segments"]

    # AND the last day's report exists as HTML, PDF and email, and the output names each file
    report_dir = lake / "reports" / f"app_id={DEMO_APP_ID}" / f"dt={last['date']}"
    for name in ("report.html", "report.pdf", "report.eml"):
        assert (report_dir / name).is_file()
        assert str(report_dir / name) in text
    assert (report_dir / "report.pdf").read_bytes().startswith(b"%PDF")
    email = message_from_bytes((report_dir / "report.eml").read_bytes())
    assert "team@studio.example" in email["To"]

    # AND the complete weeks and the month are written as range documents
    periods = sorted((lake / "metrics" / f"app_id={DEMO_APP_ID}").glob("*/metrics.json"))
    weeks = [path for path in periods if path.parent.name.startswith("week=")]
    months = [path for path in periods if path.parent.name.startswith("month=")]
    assert len(weeks) >= 4 and len(months) >= 1
    assert all(str(path) in text for path in weeks + months)
    month = json.loads(months[-1].read_text())
    assert month["kind"] == "range" and month["from"].endswith("-01")

    # AND the query and export commands it prints work as pasted
    commands = re.findall(r"^  (minidrama (?:query|export) .+)$", text, re.MULTILINE)
    assert [command.split()[1] for command in commands] == ["query", "export"]
    query, export = (
        subprocess.run(
            [sys.executable, "-m", *command.split()], capture_output=True, text=True, timeout=120, check=False
        )
        for command in commands
    )
    assert query.returncode == 0, query.stderr
    queried = json.loads(query.stdout)
    assert list(queried["segments"]) == ["all", "os:ios"] and queried["to"] == last["date"]
    assert export.returncode == 0, export.stderr
    assert export.stdout.splitlines()[0] == "date,dashboard.active_users,iap_orders.all.gmv"
    assert len(export.stdout.splitlines()) == 36
    assert export.stdout.splitlines()[-1].startswith(
        f"{last['date']},{everyone['dashboard']['active_users']},"
    )

    # AND the sample request is a body the HTTP API takes
    request = json.loads((out / "sample-request.json").read_text())
    assert 0 < len(request["events"]) <= 1_000
    assert re.search(r"Done in [\d.]+ s", text)

    # AND the dashboard address it prints opens, with a token the read API takes (on any port)
    (url,) = re.findall(r"^  (http://127\.0\.0\.1:8080/v1/apps/\S+/dashboard#token=\S+)$", text, re.MULTILINE)
    token = url.split("#token=", 1)[1]
    with serving(lake) as served:
        page = urllib.request.urlopen(
            url.split("#")[0].replace("http://127.0.0.1:8080", served.url), timeout=30
        )
        assert page.status == 200 and "script-src 'self'" in page.headers["Content-Security-Policy"]
        range_url = re.search(r"'(http://127\.0\.0\.1:8080/v1/apps/\S+/metrics\?\S+)'", text)
        assert range_url is not None
        request_for_range = urllib.request.Request(
            range_url.group(1).replace("http://127.0.0.1:8080", served.url),
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request_for_range, timeout=60) as answer:
            assert json.loads(answer.read())["to"] == last["date"]
    # AND the emailed report links to that day on the dashboard
    parsed = message_from_bytes((report_dir / "report.eml").read_bytes(), policy=default_policy)
    plain = parsed.get_body(preferencelist=("plain",))
    assert plain is not None
    day_link = (
        f"http://127.0.0.1:8080/v1/apps/{DEMO_APP_ID}/dashboard?from={last['date']}&to={last['date']}#token="
    )
    assert day_link in plain.get_content()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_running_the_demo_again_starts_from_a_fresh_lake(tmp_path: Path) -> None:
    # GIVEN a demo already run in this directory
    out = tmp_path / "demo-out"
    assert _run_demo(out, 3).returncode == 0
    # WHEN it runs again, shorter
    again = _run_demo(out, 2)
    # THEN it succeeds on a lake holding only the new run's days
    assert again.returncode == 0, again.stderr
    documents = list((out / "lake" / "metrics" / f"app_id={DEMO_APP_ID}").glob("dt=*/metrics.json"))
    assert len(documents) == 2
    assert (out / "lake" / MARKER_NAME).is_file()


# --- the demo's lake handling: never delete what it did not create ----------------------------


def test_a_lake_made_by_the_demo_is_wiped(tmp_path: Path) -> None:
    # GIVEN a lake an earlier demo created, with its events
    root = tmp_path / "out" / "lake"
    prepare_lake(tmp_path / "out", None)
    old = root / events_key(DEMO_APP_ID, "2026-11-01", 3, "old")
    old.parent.mkdir(parents=True)
    old.write_bytes(b"PAR1")
    # WHEN the demo prepares it again
    storage = prepare_lake(tmp_path / "out", None)
    # THEN it is empty but for the marker
    assert not old.exists()
    assert [path.name for path in root.rglob("*")] == [MARKER_NAME]
    assert storage.uri == str(root.resolve())


def test_a_directory_the_demo_did_not_create_is_kept(tmp_path: Path) -> None:
    # GIVEN someone's own lake with another app's data at the demo's default location
    root = tmp_path / "out" / "lake"
    own = root / events_key("their-app", "2026-11-01", 3, "mine")
    own.parent.mkdir(parents=True)
    own.write_bytes(b"PAR1")
    # WHEN the demo prepares it
    prepare_lake(tmp_path / "out", None)
    # THEN nothing of theirs is deleted, and the directory is not marked as the demo's
    assert own.read_bytes() == b"PAR1"
    assert not (root / MARKER_NAME).exists()


def test_demo_events_in_a_lake_it_did_not_create_stop_the_demo(tmp_path: Path) -> None:
    # GIVEN a lake, not made by the demo, that already holds events of the demo app
    root = tmp_path / "their-lake"
    existing = root / events_key(DEMO_APP_ID, "2026-11-01", 3, "kept")
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"PAR1")
    # WHEN the demo is pointed at it THEN it refuses, naming the place, and deletes nothing
    with pytest.raises(DemoLakeError, match="already holds events of the app 'demo-drama'"):
        prepare_lake(tmp_path / "out", str(root))
    assert existing.read_bytes() == b"PAR1"


def test_a_lake_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "lake").write_text("not a directory")
    with pytest.raises(DemoLakeError, match="cannot use .*lake as the demo's lake"):
        prepare_lake(tmp_path / "out", None)
    assert (tmp_path / "out" / "lake").read_text() == "not a directory"


def test_demo_refuses_nonsense_days(tmp_path: Path) -> None:
    completed = _run_demo(tmp_path / "out", 0)
    assert completed.returncode == 2
    assert "--days must be at least 1" in completed.stderr
    assert not (tmp_path / "out").exists()
