# callcast — run `make help` for the list of targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOTSTRAP ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
PY := .venv/bin/python

export CALLCAST_HOME ?= $(CURDIR)/.callcast
export PREFECT_HOME ?= $(CALLCAST_HOME)/prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export GX_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export MPLBACKEND ?= Agg

.PHONY: help venv node seed demo export score forecast serve stop status serve-api test test-unit lint format bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	$(PYTHON_BOOTSTRAP) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python 3.11
	@touch $@

venv: .venv/.synced ## Create .venv from the lock file (project installed editable)

node_modules/.synced: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node: node_modules/.synced ## Install the Node test tools (Azurite) from package-lock.json

seed: venv ## (Re)build the demo operational database (SIZE=tiny|small|demo|large|xlarge)
	.venv/bin/callcast seed --size $(or $(SIZE),demo)

demo: venv ## Set up and run the main job end to end on embedded defaults, then print a summary
	.venv/bin/callcast demo

export: venv ## Run the daily export now (DATE=YYYY-MM-DD optional)
	.venv/bin/callcast export $(if $(DATE),--date $(DATE))

score: venv ## Build today's call list from the champion (CAPACITY=N optional)
	.venv/bin/callcast score $(if $(CAPACITY),--capacity $(CAPACITY))

forecast: venv ## Forecast the demo sales (or CSV=path ID_COLS=a,b DATE_COL=.. VALUE_COL=.. FREQ=W for your own)
	.venv/bin/callcast forecast $(if $(CSV),--csv $(CSV) --id-cols $(ID_COLS) --date-col $(DATE_COL) --value-col $(VALUE_COL) --freq $(or $(FREQ),W))

serve: venv ## Start the local Prefect server + UI, register deployments and alerts, start a worker; prints the UI URL
	.venv/bin/callcast serve

stop: ## Stop the Prefect server and worker that `make serve` started (by PID; nothing else)
	@if [ -x .venv/bin/callcast ]; then .venv/bin/callcast stop; else echo "nothing to stop (no .venv)"; fi

status: venv ## Is the local Prefect server / worker running, and where is the UI
	@.venv/bin/callcast status || true

serve-api: venv ## Serve the champion over HTTP on 127.0.0.1:8765 (CALLCAST_API__* to change)
	.venv/bin/callcast serve-api

test: venv node ## Run every test (unit, data, flow, integration on real services)
	$(PY) -m pytest

test-unit: venv ## Run only the fast tests (no services)
	$(PY) -m pytest -m "not integration"

settings-doc: venv ## Regenerate README's configuration table from the settings classes
	$(PY) -c "from pathlib import Path; from callcast.settings_doc import replace_readme_block as r; p = Path('README.md'); p.write_text(r(p.read_text()))"

lint: venv ## Lint, check formatting and the layer contracts (import-linter)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports

format: venv ## Format the code
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

bench: venv ## Run every benchmark script (prints figures; takes a while)
	@for script in benchmarks/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean: ## Remove generated state (.callcast) — the lock file and code stay
	rm -rf .callcast
