# The two set-up commands: `make run` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
# The exact library versions, locally and in Azure ML (ml/environment/conda.yml pins the same).
PIN    := -c ml/environment/constraints.txt

.PHONY: run test lint typecheck clean-lake help validate-model package

help:
	@echo "make run   - install, generate the sample data, run the weekly batch for every region"
	@echo "make test  - install the test tools and run lint, type checks, the test suite and validate-model"
	@echo "make validate-model - the whole batch on small generated data in a temporary lake, checked"
	@echo "make package - build dist/functionapp.zip and dist/aml.zip (reproducible)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -U pip

# torch is pinned and installed before the rest: that version is a CPU build on local disk.
$(VENV)/.installed-run: pyproject.toml ml/environment/constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet $(PIN) $(TORCH)
	$(BIN)/pip install --quiet $(PIN) -e '.[ml]'
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-run
	$(BIN)/pip install --quiet $(PIN) -e '.[ml,dev]'
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
	$(BIN)/pytest --cov --cov-report=term --cov-fail-under=90
	$(MAKE) --no-print-directory validate-model

# Basic model validation (scripts/validate_model.py): generate, run, check every segment's metrics.
validate-model: $(VENV)/.installed-run
	$(BIN)/python -m scripts.validate_model

# Deployable artefacts into dist/ (scripts/package.py): Function App zip, Azure ML code bundle.
package: $(VENV)/.installed-run
	$(BIN)/python -m scripts.package

clean-lake:
	rm -rf .lake
