# The platform's make targets. `make help` lists them.
# A fresh machine needs only Python 3.11 and make: uv is installed with pip when it is missing.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
VENV := .venv
BIN := $(VENV)/bin
SOURCES ?= data/sources
DEMO_CITIZENS ?= 5000
DEMO_SEED ?= 20250101

.PHONY: help uv env demo synth test check format bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-8s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

uv: ## Install uv with pip if it is missing
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 \
		|| $(PYTHON) -m pip install --quiet --disable-pip-version-check uv

$(BIN)/gjh: pyproject.toml uv.lock | uv
	$(UV) sync --frozen
	@touch $@

env: $(BIN)/gjh ## Create the virtual environment from uv.lock

synth: env ## Generate the demo city's deliveries into $(SOURCES) (kept if already there)
	@test -f $(SOURCES)/MANIFEST.json || $(BIN)/gjh synth --citizens $(DEMO_CITIZENS) --start 2025-01-01 --days 365 --seed $(DEMO_SEED) --out $(SOURCES)

demo: synth ## Generate the demo city, build the lakehouse, then serve the UI
	$(BIN)/gjh keys
	$(BIN)/gjh build --sources $(SOURCES)
	$(BIN)/gjh catalog
	@echo
	@echo "Deliveries are in $(SOURCES)/; ground truth (never read by the pipelines) in $(SOURCES)/ground_truth/."
	@echo "Tables are in data/lakehouse/ (gjh catalog lists them); run history in data/dagster/."
	$(BIN)/gjh serve

test: env ## Run every test except the benchmarks
	$(BIN)/pytest

check: env ## Lint, format check and type check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: env ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: env ## Run the benchmarks (full city size; slow) and write bench-results/
	$(BIN)/pytest -m benchmark -p no:cacheprovider -s tests/benchmarks

clean: ## Remove generated data and caches (keeps the environment)
	rm -rf data bench-results .pytest_cache .mypy_cache .ruff_cache
