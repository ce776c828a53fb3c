# Local development, tests and deployment. Every target works on a fresh clone:
# `setup` builds the three virtual environments it needs on first use.
#
#   make run      start the local stack in the foreground (Ctrl-C stops it)
#   make up       start it in the background; `make down` stops it; `make status`
#   make test     the whole test suite (starts its own stack); PYTEST_ARGS='-k smoke'
#   make bench    the benchmark (bench/run.py)
#   make lint     ruff (ruff.toml) and mypy (mypy.ini) on the whole tree; the unit tests run both too
#   make lock     re-resolve functions/requirements.lock (hashed) from functions/requirements.txt
#   make check-infra   terraform fmt -check + checkov on infra/
#   make web      the TypeScript client (clients/typescript) and the playground bundle
#   make deploy PROJECT=my-project REGION=europe-west1

PYTHON ?= python3
PYTEST_ARGS ?=
BENCH_ARGS ?=

VENV := .venv
# What the local stack runs the functions on: the lock and nothing else, as deployed.
FUNCTIONS_VENV := .venv-functions
IAC_VENV := .venv-iac

# checkov pins its own dependencies: it gets a virtual environment of its own.
CHECKOV_VERSION := 3.3.30
PYTHON_HCL2_VERSION := 8.1.4

PIP_FLAGS := --quiet --disable-pip-version-check --no-input

# The functions' runtime: the tests run on it and infra/ deploys it. The hashed
# lock is resolved for it and installed all-or-nothing (--require-hashes), then
# the dev tools on top in a second pip call, then the Python client, editable
# (its dependencies and the `imagegen` console script the tests run).
RUNTIME_PYTHON := 3.11
LOCK := functions/requirements.lock

# A stamp file per environment: rebuilt only when its requirements change.
VENV_STAMP := $(VENV)/.installed
FUNCTIONS_STAMP := $(FUNCTIONS_VENV)/.installed
IAC_STAMP := $(IAC_VENV)/.installed-$(CHECKOV_VERSION)-$(PYTHON_HCL2_VERSION)

.PHONY: help setup web run up down status test lint bench lock check-infra deploy clean

help:
	@sed -n '1,/^$$/p' Makefile | sed 's/^# \{0,1\}//'

setup: $(VENV_STAMP) $(FUNCTIONS_STAMP) $(IAC_STAMP)

# $(call runtime_venv,DIR): DIR exists and runs RUNTIME_PYTHON.
define runtime_venv
@test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
@$(1)/bin/python -c 'import sys; v = "%d.%d" % sys.version_info[:2]; sys.exit(0 if v == "$(RUNTIME_PYTHON)" else "$(1) runs Python " + v + ", the functions run $(RUNTIME_PYTHON): PYTHON=python$(RUNTIME_PYTHON) make clean setup")'
endef

$(VENV_STAMP): requirements.txt $(LOCK) clients/python/pyproject.toml
	$(call runtime_venv,$(VENV))
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) --require-hashes -r $(LOCK)
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) -r requirements.txt
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) -e ./clients/python
	@touch $@

# The lock alone (no dev tools, no client): an import of a package it lacks fails
# here as it would deployed, and cold starts load what production loads. Built
# afresh when the lock changes, so that nothing the lock dropped stays installed.
$(FUNCTIONS_STAMP): $(LOCK)
	rm -rf $(FUNCTIONS_VENV)
	$(call runtime_venv,$(FUNCTIONS_VENV))
	$(FUNCTIONS_VENV)/bin/python -m pip install $(PIP_FLAGS) --require-hashes -r $(LOCK)
	@touch $@

# Keeps the lock's current pins unless functions/requirements.txt asks otherwise
# (add --upgrade-package NAME, or delete the lock, to move a transitive pin).
lock: $(VENV_STAMP)
	$(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version $(RUNTIME_PYTHON) \
		--python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" \
		functions/requirements.txt -o $(LOCK)

$(IAC_STAMP):
	@test -x $(IAC_VENV)/bin/python || $(PYTHON) -m venv $(IAC_VENV)
	$(IAC_VENV)/bin/python -m pip install $(PIP_FLAGS) checkov==$(CHECKOV_VERSION) python-hcl2==$(PYTHON_HCL2_VERSION)
	@rm -f $(IAC_VENV)/.installed-*
	@touch $@

# The TypeScript client and the playground's bundle are built, not committed:
# types from the API's own OpenAPI document (written by the Python code, so
# they cannot drift), then tsc, then esbuild into functions/ (deployed with it).
TS_DIR := clients/typescript
NODE_STAMP := $(TS_DIR)/node_modules/.installed
OPENAPI_SNAPSHOT := $(TS_DIR)/openapi.json
WEB_BUNDLE := functions/imagegen/api/static/playground.js

web: $(WEB_BUNDLE)

$(NODE_STAMP): $(TS_DIR)/package-lock.json
	cd $(TS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(OPENAPI_SNAPSHOT): $(shell find functions/imagegen -name '*.py') | $(VENV_STAMP)
	cd functions && ../$(VENV)/bin/python -c 'import json; from imagegen.api.openapi import openapi_document; print(json.dumps(openapi_document(), indent=2, ensure_ascii=False))' > ../$@.tmp
	@mv $@.tmp $@

$(WEB_BUNDLE): $(NODE_STAMP) $(OPENAPI_SNAPSHOT) $(TS_DIR)/tsconfig.json $(wildcard $(TS_DIR)/src/*.ts $(TS_DIR)/playground/*.ts)
	cd $(TS_DIR) && npm run --silent build

run: setup web
	$(VENV)/bin/python -m emulator.stack run

up: setup web
	$(VENV)/bin/python -m emulator.stack up

down:
	@if [ -x $(VENV)/bin/python ]; then $(VENV)/bin/python -m emulator.stack down; \
	else $(PYTHON) -m emulator.stack down; fi

status:
	@if [ -x $(VENV)/bin/python ]; then $(VENV)/bin/python -m emulator.stack status; \
	else $(PYTHON) -m emulator.stack status; fi

test: setup web
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: setup
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

check-infra: $(IAC_STAMP)
	terraform -chdir=infra fmt -check -recursive -diff
	BC_SKIP_MAPPING=TRUE $(IAC_VENV)/bin/checkov --skip-download --quiet --compact --framework terraform --directory infra \
		$(if $(wildcard infra/.checkov.yaml),--config-file infra/.checkov.yaml)

deploy:
	@test -n "$(PROJECT)" || { echo "usage: make deploy PROJECT=<gcp-project-id> REGION=<region>"; exit 2; }
	@test -n "$(REGION)" || { echo "usage: make deploy PROJECT=<gcp-project-id> REGION=<region>"; exit 2; }
	bash infra/deploy.sh $(PROJECT) $(REGION)  # builds `make web` first

clean:
	-@$(MAKE) --no-print-directory down
	rm -rf $(VENV) $(FUNCTIONS_VENV) $(IAC_VENV) .stack .pytest_cache $(TS_DIR)/node_modules $(TS_DIR)/dist $(OPENAPI_SNAPSHOT) $(WEB_BUNDLE)*
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
