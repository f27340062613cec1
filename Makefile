# Ambula: `make run` to try it, `make test` to test it. Nothing else to install by hand.

VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

# The first Python >= 3.11 found on PATH (or PYTHON=/path/to/python3 make ...).
PYTHON ?= $(shell for candidate in python3.13 python3.12 python3.11 python3; do \
	command -v $$candidate >/dev/null 2>&1 && \
	$$candidate -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && \
	{ command -v $$candidate; break; }; done)

.PHONY: run test lint format bench clean

run: $(VENV)/.installed
	$(BIN)/ambula run --demo

test: $(VENV)/.installed-test
	$(BIN)/pytest -n auto $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(VENV)/.installed-test
	@for benchmark in bench/[!_]*.py; do $(BIN)/python $$benchmark || exit 1; done

$(VENV)/bin/python:
	@if [ -z "$(PYTHON)" ]; then \
		echo "Ambula needs Python 3.11 or newer; none was found on PATH." >&2; \
		echo "Install it (e.g. apt install python3, brew install python) or run: make PYTHON=/path/to/python3.11 run" >&2; \
		exit 1; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache test-artifacts
