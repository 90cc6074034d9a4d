# The one task runner: CI calls exactly these targets (see .ci/run).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The production profile every lab measures under (workbench report --help); SCALE and SEED,
# when set, override its data (e.g. make report SCALE=medium).
PROFILE ?= profiles/default.toml
SCALE ?=
SEED ?=
# auto: duckdb,sqlite, plus postgres when its server binaries are installed (workbench report --help)
ENGINES ?= auto
CCUSAGE_VERSION ?= 20.0.24  # the newest with a linux-x64 native package

.DEFAULT_GOAL := help
.PHONY: help install install-dev data report test lab refresh lint benchmarks system-deps tools clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(BIN)/.installed-dev: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/.installed  ## Create .venv and install the project (reused when up to date)

install-dev: $(BIN)/.installed-dev  ## The project plus its dev extra: pytest, nbval, ruff, pyyaml (environment.yml checks)

data: install  ## Build a synthetic dataset (data/SCALE, default small); reused when it exists
	$(BIN)/workbench generate data/$(or $(SCALE),small) --scale $(or $(SCALE),small) --seed $(or $(SEED),7)

report: install  ## Run every notebook under PROFILE (DuckDB, SQLite, PostgreSQL if installed); write reports/index.html
	$(BIN)/workbench report --profile $(PROFILE) --engines $(ENGINES) $(if $(SCALE),--scale $(SCALE)) $(if $(SEED),--seed $(SEED))

test: install-dev tools  ## The whole suite: unit, CLI, PostgreSQL, Chromium and nbval
	$(BIN)/python -m pytest

lab: install  ## Open JupyterLab on notebooks/ with the project's environment
	$(BIN)/jupyter lab --notebook-dir notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

refresh: install  ## Re-execute notebooks/*.py into their .ipynb (the outputs nbval checks)
	$(BIN)/workbench refresh

lint: install-dev  ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

benchmarks: install-dev  ## Run the benchmarks (results go in docs/BENCHMARKS.md by hand)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
system-deps:  ## Debian/Ubuntu packages the PostgreSQL, browser, Prometheus, wrk and ccusage tests use (root or sudo)
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
		python3-venv postgresql postgresql-15-hypopg chromium sqlite3 prometheus wrk \
		$(if $(shell command -v npm),,nodejs npm) >/dev/null

tools: .tools/node_modules/.bin/ccusage  ## Local ccusage (npm) for the ingest agreement tests

.tools/node_modules/.bin/ccusage:
	@if command -v npm >/dev/null; then npm install --silent --no-fund --no-audit --prefix .tools ccusage@$(CCUSAGE_VERSION); \
	else echo "npm not found: ccusage agreement tests will skip (make system-deps installs it)"; fi

clean:  ## Remove generated data, reports and the venv
	rm -rf $(VENV) data/*/ data/*.duckdb data/*.sqlite reports/*.html reports/*.js reports/*.ipynb reports/*/ .tools
