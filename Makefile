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
# The record-link history extract reaches back to here (linked citizens' claims and pharmacy).
DEMO_HISTORY_FROM ?= 2010-01-01

.PHONY: help uv env browser postgres orthanc s3 demo synth test screenshots check format bench clean train

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[1m%-11s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

uv: ## Install uv with pip if it is missing
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 \
		|| $(PYTHON) -m pip install --quiet --disable-pip-version-check uv

$(BIN)/gjh: pyproject.toml uv.lock | uv
	$(UV) sync --frozen --extra distributed
	@touch $@

env: $(BIN)/gjh ## Create the virtual environment from uv.lock

# The browser tests drive Debian's Chromium through Playwright (never `playwright install`: nothing
# downloads a browser) and need a CJK font so Korean renders in screenshots instead of boxes.
# apt-get runs only when something is missing, so an equipped machine pays nothing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -qq -o Dpkg::Use-Pty=0
BROWSER_PACKAGES := chromium fonts-noto-cjk

browser: ## Install Debian's Chromium and a Korean font for the browser tests (only when missing)
	@if [ ! -x /usr/bin/chromium ] || [ -z "$$(fc-list :lang=ko 2>/dev/null)" ]; then \
		echo "Installing $(BROWSER_PACKAGES) with apt-get"; \
		$(APT_GET) update && \
		$(APT_GET) install -y --no-install-recommends $(BROWSER_PACKAGES) fontconfig >/dev/null; \
	fi

# The PostgreSQL tests (Dagster's production storage) start their own server from Debian's
# binaries on 127.0.0.1; like the browser, apt-get runs only when they are missing. Debian's
# package also starts a cluster of its own as a service where one runs: the tests never use it.
POSTGRES_PACKAGES := postgresql

postgres: ## Install Debian's PostgreSQL server for the Dagster-on-PostgreSQL tests (only when missing)
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "Installing $(POSTGRES_PACKAGES) with apt-get"; \
		$(APT_GET) update && \
		$(APT_GET) install -y --no-install-recommends $(POSTGRES_PACKAGES) >/dev/null; \
	fi

# The DICOM intake stage of `gjh bench` sets the project against Debian's Orthanc taking in the
# same files over REST; its test (make test) runs both on a handful of files.
ORTHANC_PACKAGES := orthanc

orthanc: ## Install Debian's Orthanc, the DICOM intake peer of the benchmark (only when missing)
	@if [ ! -x /usr/sbin/Orthanc ]; then \
		echo "Installing $(ORTHANC_PACKAGES) with apt-get"; \
		$(APT_GET) update && \
		$(APT_GET) install -y --no-install-recommends $(ORTHANC_PACKAGES) >/dev/null; \
	fi

# A real S3 server for the object-storage tests: Debian's Ceph RADOS Gateway, run by the tests as a
# single node (tests/lakehouse/s3server.py).
S3_PACKAGES := radosgw ceph-mon ceph-osd

s3: ## Install Debian's Ceph radosgw, monitor and OSD for the S3 object-storage tests (only when missing)
	@if ! command -v radosgw >/dev/null || ! command -v ceph-mon >/dev/null || ! command -v ceph-osd >/dev/null; then \
		echo "Installing $(S3_PACKAGES) with apt-get"; \
		$(APT_GET) update && \
		$(APT_GET) install -y --no-install-recommends $(S3_PACKAGES) >/dev/null; \
	fi

synth: env ## Generate the demo city's deliveries into $(SOURCES) (kept if already there)
	@test -f $(SOURCES)/MANIFEST.json || $(BIN)/gjh synth --citizens $(DEMO_CITIZENS) --start 2025-01-01 --days 365 --seed $(DEMO_SEED) --history-from $(DEMO_HISTORY_FROM) --out $(SOURCES)

demo: synth ## Generate the demo city, build the lakehouse, then serve the apps and the Dagster UI
	$(BIN)/gjh keys
	$(BIN)/gjh accounts load-demo --sources $(SOURCES)
	$(BIN)/gjh build --sources $(SOURCES)
	$(BIN)/gjh catalog
	@echo
	@echo "Deliveries are in $(SOURCES)/; ground truth (never read by the pipelines) in $(SOURCES)/ground_truth/."
	@echo "Tables are in data/lakehouse/ (gjh catalog lists them); run history in data/dagster/."
	@echo
	$(BIN)/gjh accounts demo --sources $(SOURCES)
	@echo
	$(BIN)/gjh serve

# Two pytest-xdist workers, a test module each at a time (--dist loadscope: a module's fixtures,
# its servers and lakes, are made once); the session's cities and builds are made once for both
# (tests/conftest.py, once). TEST_WORKERS=0 runs everything in one process. The slowest tests
# are listed at the end, to see where the time goes.
TEST_WORKERS ?= 2

test: env browser postgres orthanc ## Run every test except the benchmarks (TEST_WORKERS=2 processes)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadscope --durations=30

screenshots: env browser ## Refresh the committed screenshots in docs/screenshots from the browser tests
	GJH_SCREENSHOTS_DIR=docs/screenshots $(BIN)/pytest -m browser -p no:cacheprovider tests/apps

check: env ## Lint, format check and type check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: env ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: env orthanc s3 ## The whole platform at the quick size (gjh bench), then the benchmarks (full city size; slow) and the S3 tests on radosgw; results in bench-results/
	$(BIN)/gjh bench --size quick
	$(BIN)/pytest -m benchmark -p no:cacheprovider -s tests/benchmarks tests/gjh/test_bench.py
	$(BIN)/pytest -m s3 -p no:cacheprovider -s tests/lakehouse/test_s3.py

# Training environment for the reference models: torch from the CPU wheel this machine kind keeps
# on disk (pip's find-links), never from an index (that resolves to a multi-GB CUDA build). torch is
# not a runtime dependency: the platform scores with onnxruntime alone.
TRAIN_VENV := .venv-train
TRAIN_PYTHON ?= python3.11
MODEL_SERVICES ?= chest spine_fracture dental leg_length ecg brain fundus gastroscopy mammography \
	prostate bone_age colonoscopy

$(TRAIN_VENV)/.installed: pyproject.toml
	$(TRAIN_PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_VENV)/bin/pip install --quiet --disable-pip-version-check torch==2.13.0 onnx -e .
	@touch $@

train: $(addprefix train-,$(MODEL_SERVICES)) ## Retrain the reference models (MODEL_SERVICES="chest ecg" for some)

train-%: $(TRAIN_VENV)/.installed
	$(TRAIN_VENV)/bin/python models/$*/train.py

clean: ## Remove generated data and caches (keeps the environment)
	rm -rf data bench-results .pytest_cache .mypy_cache .ruff_cache
