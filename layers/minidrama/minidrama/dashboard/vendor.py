"""Refresh the dashboard's vendored npm files (``make vendor-dashboard``): a maintainer's tool.

Reads ``packages.json`` in the vendor directory, runs ``npm pack NAME@VERSION`` for each package,
copies ``package/build/FILE`` unchanged, and rewrites the file's SHA-256 in ``packages.json``.
The licence files are kept as they are (a package that ships none has the project's copy of its
BSD-3-Clause text). Needs ``npm`` on PATH; the product never runs this.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path


def refresh(vendor: Path) -> list[str]:
    """Fetch every package of ``vendor/packages.json``; returns a line per file."""
    manifest_path = vendor / "packages.json"
    manifest = json.loads(manifest_path.read_text())
    lines = []
    with tempfile.TemporaryDirectory() as work:
        for package in manifest["packages"]:
            spec = f"{package['name']}@{package['version']}"
            packed = (
                subprocess.run(
                    ["npm", "pack", spec, "--silent"], cwd=work, check=True, capture_output=True, text=True
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            with tarfile.open(Path(work) / packed) as archive:
                member = archive.extractfile(f"package/build/{package['file']}")
                if member is None:
                    raise SystemExit(f"{spec} has no build/{package['file']}")
                with (vendor / package["file"]).open("wb") as target:
                    shutil.copyfileobj(member, target)
            package["sha256"] = hashlib.sha256((vendor / package["file"]).read_bytes()).hexdigest()
            lines.append(f"{spec}: {package['file']} {package['sha256']}")
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return lines


if __name__ == "__main__":
    for line in refresh(Path(sys.argv[1])):
        print(line)
