# Quick start: `make demo`, then `make test`. Both run `make setup` first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup setup-engines system-deps demo test test-engines lint typecheck unit bench layer-sizes vendor-dashboard clean

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

# The second engine of the cross-check: pyspark and a Java runtime (not needed by `make test`).
ENGINES_STAMP := $(VENV)/.engines-installed
setup-engines: $(ENGINES_STAMP)

$(ENGINES_STAMP): pyproject.toml $(STAMP)
	bash .ci/engine-deps
	$(BIN)/python -m pip install --quiet -e '.[dev,engines]'
	touch $(ENGINES_STAMP)

demo: setup
	$(BIN)/minidrama demo --out demo-out

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

test: lint
	$(BIN)/python -m pytest -n 2 -q --ignore=tests/engines

# The metric definitions on Spark, value by value against DuckDB (tests/engines; about 5 minutes).
test-engines: setup-engines
	$(BIN)/python -m pytest -q tests/engines

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
