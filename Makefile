# The two set-up commands: `make run` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0

.PHONY: run test lint typecheck clean-lake help

help:
	@echo "make run   - install, generate the sample data, run the weekly batch for every region"
	@echo "make test  - install the test tools and run lint, type checks and the test suite"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -U pip

# torch is pinned and installed before the rest: that version is a CPU build on local disk.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[ml]'
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-run
	$(BIN)/pip install --quiet -e '.[ml,dev]'
	touch $@

run: $(VENV)/.installed-run
	$(BIN)/demandops generate
	$(BIN)/demandops run --report-json .lake/monitoring/last_run.json

# Azurite, the Azure Storage emulator the integration tests run against (no lock file kept).
node_modules/.bin/azurite-blob:
	npm install --no-save --no-package-lock --no-audit --no-fund azurite@3.35.0

test: $(VENV)/.installed-test node_modules/.bin/azurite-blob
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest --cov --cov-report=term --cov-fail-under=80

clean-lake:
	rm -rf .lake
