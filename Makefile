# Every target works on a fresh machine that has only Python 3.11, Java 17, Go and Maven:
# it builds its own virtualenv and fetches what it needs (cached under ~/.cache/doraflow).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test testenv lint format unit integration e2e benchmarks crds clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: install
	$(BIN)/doraflow up

testenv: install
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/testenv

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The README's test command, and the only thing CI runs.
test: testenv lint
	$(BIN)/pytest tests

unit: install
	$(BIN)/pytest tests/unit

integration: testenv
	$(BIN)/pytest tests/integration

e2e: testenv
	$(BIN)/pytest tests/e2e

benchmarks: testenv
	$(BIN)/python -m benchmarks

# Regenerate crds/ and the chart's copy from doraflow/core/resources.py.
crds: install
	$(BIN)/python -m doraflow.core.crds --write

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache
