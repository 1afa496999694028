"""The dashboard's files: each one the page loads exists, and the vendored ones are the pinned npm builds."""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources

import pytest

from minidrama import dashboard

VENDOR = resources.files("minidrama.dashboard").joinpath("static", "vendor")
MANIFEST = json.loads(VENDOR.joinpath("packages.json").read_text())


@pytest.mark.parametrize("package", MANIFEST["packages"], ids=lambda package: package["name"])
def test_each_vendored_file_is_the_pinned_build_with_its_licence(package: dict[str, str]) -> None:
    body = VENDOR.joinpath(package["file"]).read_bytes()

    assert hashlib.sha256(body).hexdigest() == package["sha256"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", package["version"])
    licence = VENDOR.joinpath(package["license_file"]).read_text()
    assert "University of Washington Interactive Data Lab" in licence and "Redistribution" in licence


def test_the_page_loads_only_its_own_files_each_with_a_content_hash() -> None:
    page = dashboard.page()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.body)

    assert sources[0] == "data:,"  # the icon: no request at all
    names = [
        re.fullmatch(r"\.\./\.\./dashboard/([\w.-]+)\?v=([0-9a-f]{12})", source) for source in sources[1:]
    ]
    assert all(names), sources
    assert {match.group(1) for match in names if match} == set(dashboard.ASSETS)
    for match in names:
        assert match is not None
        served = dashboard.asset(match.group(1))
        assert served is not None
        assert hashlib.sha256(served.body.encode()).hexdigest()[:12] == match.group(2)
    # AND no script is inline: the policy allows none
    assert "<script>" not in page.body and not re.search(r"<script(?![^>]*\ssrc=)", page.body)


def test_the_policy_runs_only_the_pages_own_scripts() -> None:
    policy = dict(dashboard.page().headers)["Content-Security-Policy"]

    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "unsafe-eval" not in policy and "unsafe-inline" not in policy and "*" not in policy
    assert "frame-ancestors 'none'" in policy


@pytest.mark.parametrize(
    "name", ["../api.py", "dashboard.py", "index.html", "packages.json", "vega.min.js.map"]
)
def test_a_name_the_page_does_not_use_is_not_served(name: str) -> None:
    assert dashboard.asset(name) is None
