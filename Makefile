# Quick start: `make demo`, then `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,chart]'
	touch $(STAMP)

## Simulate a crash, run it through the ledger, publish snapshots, audit them, draw the chart
## (with matplotlib, the `chart` extra that the venv installs).
demo: $(STAMP)
	$(BIN)/backstop demo --workdir demo-out

## The whole test suite; PostgreSQL tests use BACKSTOP_TEST_PG_URL (default: local server, db `test`).
test: $(STAMP)
	$(BIN)/python -m pytest -q

## The suite without the tests marked slow (the end-to-end demo, ...): for the edit-test loop.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

## Static checks: ruff over auditor/ and ledger/, mypy (strict on auditor/); settings in pyproject.toml.
lint: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	$(BIN)/ruff check auditor ledger
	$(BIN)/mypy

## Benchmarks (see bench/README.md); each prints a ratio against a baseline from the same run.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/import_throughput.py
	$(BIN)/python bench/merkle_build.py
	$(BIN)/python bench/audit_replay.py
	$(BIN)/python bench/publish_bytes.py
	$(BIN)/python bench/incremental_audit.py
	$(BIN)/python bench/follow_throughput.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache build *.egg-info
