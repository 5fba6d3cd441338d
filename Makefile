# Quick start: `make demo`, then `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean venv chain-deps web web-deps browser web-servers

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

## The local Ethereum node (Ganache) and solc-js for the chain tests: chain/node_modules from
## the committed lockfile (Node.js 20 and npm needed; reinstalled only when the lockfile changes).
## Without it the chain tests skip, unless BACKSTOP_REQUIRE_CHAIN=1 (CI) makes them fail.
chain-deps: chain/node_modules/.installed

chain/node_modules/.installed: chain/package-lock.json chain/package.json
	cd chain && npm ci --no-audit --no-fund
	touch $@

## Static checks: ruff over auditor/ and ledger/, strict mypy over both; settings in pyproject.toml.
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
	$(BIN)/python bench/risk_paths.py
	$(BIN)/python bench/follow_throughput.py
	$(BIN)/python bench/export_lines.py

## The transparency site's front end (web/): npm ci, then esbuild bundles it into
## ledger/site_assets/ (committed; deterministic; tests/test_site_assets.py checks it).
web: web-deps
	node web/build.mjs

## The front end's npm packages, from its lockfile (what CI installs: it checks the committed
## assets against a fresh build rather than rebuilding them in place).
web-deps: web/node_modules/.installed

web/node_modules/.installed: web/package-lock.json web/package.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## The browser tests' tools: Debian's headless Chromium (installed with apt-get when
## /usr/bin/chromium is missing) and Playwright for Python (the `browser` extra).
browser: $(STAMP)
	test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq chromium chromium-driver)
	$(BIN)/python -m pip install --quiet -e '.[test,chart,browser]'

## nginx and Caddy from Debian, for the test that serves a published log with the configs of
## docs/SERVING.md (tests/e2e/test_serving_configs.py; it skips without them unless
## BACKSTOP_REQUIRE_WEB_SERVERS=1, as in CI).
web-servers:
	test -x /usr/sbin/nginx && test -x /usr/bin/caddy || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light caddy)

clean:
	rm -rf $(VENV) demo-out .pytest_cache build *.egg-info
