"""How big each Lambda function is once deployed, against Lambda's 250 MB unzipped limit.

Builds every layer of template.yaml the way ``sam build`` does (its ``BuildMethod: makefile``
target, run on this machine: Lambda wheels fetched with ``pip --platform``, the report layer's
native libraries copied from this machine's packages; no Docker), copies each function's code,
and prints, per function, its code and each of its layers in MB (MiB, unzipped), the total, and
the margin left under the limit. Exits 1 when a function is over 240 MB: close enough to the
limit that the next dependency bump would break the deploy.

Builds are cached under ~/.cache/minidrama-layers (pip's downloads, and each built layer keyed
by a hash of its sources), so a second run only measures.

    .venv/bin/python bench/layer_sizes.py [--rebuild] [--top N] [--smoke PYTHON3.12]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml
from pypdf import PdfReader

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
CACHE = Path.home() / ".cache" / "minidrama-layers"
SHARED_BUILD_FILES = [ROOT / "layers" / "lambda.mk"]

MB = 1024 * 1024
LAMBDA_LIMIT_MB = 250.0  # code + layers, unzipped
BUDGET_MB = 240.0  # what this bench accepts: leaves room for the next dependency bump
_SKIPPED = {"__pycache__", ".pytest_cache", ".mypy_cache"}


@dataclass(frozen=True)
class Layer:
    name: str
    content_dir: Path
    build_method: str | None


@dataclass(frozen=True)
class Function:
    name: str
    code_dir: Path
    layers: list[str]


def read_template(path: Path = TEMPLATE) -> tuple[list[Function], dict[str, Layer]]:
    """The functions (with their layers, Globals included) and the layers of a SAM template."""
    template = cfn_yaml.load(str(path))
    resources: dict[str, Any] = template["Resources"]
    global_layers = template.get("Globals", {}).get("Function", {}).get("Layers", [])
    layers = {
        name: Layer(
            name, ROOT / resource["Properties"]["ContentUri"], resource.get("Metadata", {}).get("BuildMethod")
        )
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::LayerVersion"
    }
    functions = []
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        references = [*global_layers, *properties.get("Layers", [])]
        functions.append(
            Function(name, ROOT / properties["CodeUri"], [_layer_name(ref) for ref in references])
        )
    return functions, layers


def _layer_name(reference: Any) -> str:
    if isinstance(reference, dict) and "Ref" in reference:
        return str(reference["Ref"])
    raise SystemExit(f"layer {reference!r}: only layers of this template (!Ref) can be measured")


def _files(directory: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in dirnames if d not in _SKIPPED and not d.endswith(".egg-info")]
        for filename in filenames:
            yield Path(dirpath) / filename


def source_hash(layer: Layer) -> str:
    """Changes whenever anything the layer's build reads changes (its directory, lambda.mk)."""
    digest = hashlib.sha256()
    for path in sorted([*_files(layer.content_dir), *SHARED_BUILD_FILES]):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_layer(layer: Layer, rebuild: bool) -> Path:
    """The built layer's directory (what SAM zips), from the cache when its sources are unchanged."""
    if layer.build_method != "makefile":
        raise SystemExit(
            f"{layer.name}: BuildMethod {layer.build_method!r}; this bench builds makefile layers only"
        )
    target = CACHE / "builds" / f"{layer.name}-{source_hash(layer)}"
    if target.is_dir() and not rebuild:
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Built beside its final place, so the rename that publishes it is atomic.
    staging = Path(tempfile.mkdtemp(prefix=f".{layer.name}-", dir=target.parent))
    print(f"building {layer.name} ...", file=sys.stderr, flush=True)
    environment = {**os.environ, "PIP_CACHE_DIR": str(CACHE / "pip")}
    command = [
        "make",
        "--no-print-directory",
        "-f",
        str(layer.content_dir / "Makefile"),
        f"build-{layer.name}",
        f"ARTIFACTS_DIR={staging}",
        f"PYTHON={sys.executable}",
    ]
    try:
        subprocess.run(command, cwd=layer.content_dir, env=environment, check=True, stdout=subprocess.DEVNULL)
    except subprocess.CalledProcessError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise SystemExit(
            f"{layer.name}: `{' '.join(command)}` failed with exit code {error.returncode}"
        ) from error
    staging.rename(target)
    for stale in target.parent.glob(f"{layer.name}-*"):
        if stale != target:
            shutil.rmtree(stale, ignore_errors=True)
    return target


def stage_function_code(function: Function, directory: Path) -> Path:
    """The function's deployment package without its layers: its CodeUri directory as SAM copies it."""
    if (function.code_dir / "requirements.txt").exists():
        raise SystemExit(
            f"{function.name}: {function.code_dir.relative_to(ROOT)}/requirements.txt exists; "
            "dependencies belong in a layer, and this bench does not install function dependencies"
        )
    target = directory / function.name
    if not function.code_dir.is_dir():
        raise SystemExit(f"{function.name}: CodeUri {function.code_dir.relative_to(ROOT)} does not exist")
    shutil.copytree(function.code_dir, target, ignore=shutil.ignore_patterns(*_SKIPPED))
    return target


def size_mb(directory: Path) -> float:
    """Unzipped size: the bytes of every regular file (what counts toward Lambda's limit)."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(directory):
        for filename in filenames:
            path = Path(dirpath) / filename
            if not path.is_symlink():
                total += path.stat().st_size
    return total / MB


def biggest_pieces(directory: Path, count: int) -> list[tuple[str, float]]:
    """The largest entries one level inside the layer's python/ and lib/ (and fonts/)."""
    pieces = []
    for area in sorted(p for p in directory.iterdir() if p.is_dir()):
        for entry in area.iterdir():
            size = size_mb(entry) if entry.is_dir() else entry.stat().st_size / MB
            pieces.append((f"{area.name}/{entry.name}", size))
    return sorted(pieces, key=lambda piece: -piece[1])[:count]


_SMOKE_SCRIPT = """
import sys
import vl_convert
import weasyprint
import minidrama.report  # the package imports with these two layers alone (no pyarrow, no boto3)

chart = vl_convert.vegalite_to_svg({
    "data": {"values": [{"day": "d1", "users": 3}, {"day": "d2", "users": 5}]},
    "mark": "bar",
    "encoding": {"x": {"field": "day"}, "y": {"field": "users", "type": "quantitative"}},
})
html = "<h1 style='font-family: sans-serif'>Daily report</h1>" + chart
pdf = weasyprint.HTML(string=html).write_pdf("smoke.pdf")
maps = open("/proc/self/maps").read()
for name in ("libpango-1.0.so.0", "libharfbuzz.so.0", "libfontconfig.so.1"):
    loaded = {line.split()[-1] for line in maps.splitlines() if line.endswith(name)}
    assert loaded and all(path.startswith(sys.argv[1]) for path in loaded), f"{name} loaded from {loaded}"
"""


def smoke_test(python: str, core: Path, report: Path) -> None:
    """Render a PDF with a chart using only the core and report layers, as /opt would hold them.

    Runs ``python`` (a CPython 3.12, since the layers hold cp312 wheels) in an empty environment,
    with the layer's lib/ as LD_LIBRARY_PATH and fontconfig reading the layer's fonts.conf (its
    /opt/fonts paths pointed at the build). This machine's own libraries stay visible to the
    loader after lib/, so the test proves the layer is complete, not that Lambda's image lacks them.
    """
    with tempfile.TemporaryDirectory(prefix="minidrama-smoke-") as workdir:
        fonts_conf = (
            (report / "fonts" / "fonts.conf").read_text().replace("/opt/fonts", str(report / "fonts"))
        )
        (Path(workdir) / "fonts.conf").write_text(fonts_conf)
        environment = {
            "PATH": "/usr/bin:/bin",
            "HOME": workdir,
            "LD_LIBRARY_PATH": str(report / "lib"),
            "FONTCONFIG_PATH": workdir,
            "PYTHONPATH": f"{core / 'python'}:{report / 'python'}",
        }
        # -B: no bytecode written into the cached layer, which would change its measured size
        subprocess.run(
            [python, "-B", "-c", _SMOKE_SCRIPT, str(report / "lib")], env=environment, check=True, cwd=workdir
        )
        pdf = PdfReader(Path(workdir) / "smoke.pdf")
        fonts = {
            str(font["/BaseFont"]).split("+")[-1]
            for page in pdf.pages
            for font in page["/Resources"]["/Font"].values()
        }
    if not any(font.startswith("DejaVu") for font in fonts):
        raise SystemExit(f"smoke test: the PDF's fonts are {sorted(fonts)}, not the layer's DejaVu")
    print(f"smoke test: PDF with a chart, fonts {', '.join(sorted(fonts))}, native libraries of the layer")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="ignore cached layer builds")
    parser.add_argument("--top", type=int, default=5, help="largest pieces shown per layer (0: none)")
    parser.add_argument(
        "--smoke",
        metavar="PYTHON3.12",
        help="also render a PDF with the built core and report layers, using this CPython 3.12",
    )
    args = parser.parse_args(argv)

    functions, layers = read_template()
    used = {name for function in functions for name in function.layers}
    missing = used - layers.keys()
    if missing:
        raise SystemExit(f"layers referenced but not defined in template.yaml: {', '.join(sorted(missing))}")
    built = {name: build_layer(layers[name], args.rebuild) for name in sorted(used)}
    layer_mb = {name: size_mb(path) for name, path in built.items()}

    over_budget = []
    rows = []
    with tempfile.TemporaryDirectory(prefix="minidrama-functions-") as staging:
        for function in functions:
            code_mb = size_mb(stage_function_code(function, Path(staging)))
            total = code_mb + sum(layer_mb[name] for name in function.layers)
            parts = ", ".join(
                [f"code {code_mb:.1f}", *(f"{name} {layer_mb[name]:.1f}" for name in function.layers)]
            )
            rows.append((function.name, parts, total, LAMBDA_LIMIT_MB - total))
            if total > BUDGET_MB:
                over_budget.append(function.name)

    width = max(len(row[1]) for row in rows)
    print(f"{'function':<16} {'pieces (MB unzipped)':<{width}} {'total':>7} {'limit':>6} {'margin':>7}")
    for name, parts, total, margin in rows:
        print(f"{name:<16} {parts:<{width}} {total:>7.1f} {LAMBDA_LIMIT_MB:>6.0f} {margin:>7.1f}")

    if args.top:
        print()
        for name in sorted(built):
            pieces = ", ".join(f"{piece} {size:.1f}" for piece, size in biggest_pieces(built[name], args.top))
            print(f"{name} ({layer_mb[name]:.1f} MB): {pieces}")

    if args.smoke:
        print()
        smoke_test(args.smoke, built["CoreLayer"], built["ReportLayer"])

    if over_budget:
        print(f"\nover the {BUDGET_MB:.0f} MB budget: {', '.join(over_budget)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
