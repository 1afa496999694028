# Quick start: `make demo`, then `make test`. Both run `make setup` first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-deps demo test lint typecheck unit bench layer-sizes vendor-dashboard clean

setup: $(STAMP)

# Reinstall only when the project's dependencies change; quick when done.
$(STAMP): pyproject.toml
	bash .ci/system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

system-deps:
	bash .ci/system-deps

demo: setup
	$(BIN)/minidrama demo --out demo-out

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

test: lint
	$(BIN)/python -m pytest -n 2 -q

bench: setup
	$(BIN)/python bench/ingest_bench.py
	$(BIN)/python bench/metrics_bench.py

layer-sizes: setup
	$(BIN)/python bench/layer_sizes.py

# Re-fetch the dashboard's vendored Vega files from npm at the versions pinned in packages.json
# (npm pack, unchanged build files) and rewrite their SHA-256s; review the diff before committing.
VENDOR := layers/minidrama/minidrama/dashboard/static/vendor
vendor-dashboard: setup
	$(BIN)/python -m minidrama.dashboard.vendor $(VENDOR)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis demo-out build .aws-sam
