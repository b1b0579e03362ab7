# chatgate: `make run` serves, `make test` checks. Both set themselves up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
BROWSER := tests/browser

.PHONY: run dev test test-unit lint bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "chatgate needs Python 3.11 or newer (set PYTHON=python3.x)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements-dev.txt requirements-otel.txt requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime

## run: production server (gunicorn) on http://$(HOST):$(PORT)
run: $(VENV)/.runtime
	@mkdir -p instance
	HOST=$(HOST) PORT=$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

## dev: Flask development server (python wsgi.py), HTTPS when TLS_* are set
dev: $(VENV)/.runtime
	@mkdir -p instance
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python wsgi.py

# The browser test and newman come from npm (playwright-core drives Debian's chromium).
$(BROWSER)/node_modules/.installed: $(BROWSER)/package.json $(BROWSER)/package-lock.json
	npm ci --prefix $(BROWSER) --no-audit --no-fund
	@touch $@

COVERAGE := --cov=app --cov=config --cov-branch --cov-report=term-missing:skip-covered --cov-fail-under=90

## test: set up what the suite needs (PostgreSQL, Redis, Chromium, npm tools), static checks, every test, coverage
test: $(VENV)/.dev $(BROWSER)/node_modules/.installed
	sh tests/setup.sh all
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest $(COVERAGE)

## test-unit: the unit tier alone (no servers, browsers or SDK clients), in well under a minute
test-unit: $(VENV)/.dev
	sh tests/setup.sh services
	$(BIN)/python -m pytest -m "not e2e"

## lint: ruff (with import order) and mypy over app/ and config.py
lint: $(VENV)/.dev
	$(BIN)/ruff check app config.py
	$(BIN)/mypy

## bench: chatgate vs a bare proxy vs LiteLLM behind one mock upstream (not part of test; ~5-10 min)
bench: $(VENV)/.runtime
	$(PYTHON) bench/run.py $(BENCH_ARGS)
	$(PYTHON) bench/growth.py

clean:
	rm -rf $(VENV) .pytest_cache .coverage htmlcov .mypy_cache .ruff_cache

.PHONY: filter-report mutation

## filter-report: recall and keep-rate of the response filter on a generated corpus (not part of test)
filter-report: $(VENV)/.dev
	$(BIN)/python bench/filter_report.py

## mutation: mutation score of the filter's unit tests over its detector and stream modules (not part of test)
mutation: $(VENV)/.dev
	$(BIN)/python tools/mutation.py
