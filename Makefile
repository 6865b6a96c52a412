# Touchpoint developer commands. `make test` is THE test command (README, CI):
# system packages, virtualenv, local Kafka + Redis, every test, then stops what it started.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STACK  := deploy/local/stack

.PHONY: help bootstrap venv stack stack-down stack-status test test-unit test-integration \
        lint fmt typecheck bench demo demo-embedded clean

help:
	@echo "make venv | stack | stack-down | stack-status | test | test-unit | test-integration"
	@echo "     lint | fmt | typecheck | bench | demo | demo-embedded | clean"

# System packages (JDK, Maven, redis-server, prometheus/promtool); quick no-op when present.
bootstrap:
	@bash scripts/bootstrap.sh

# Re-install only when pyproject.toml changes (the stamp is newer otherwise).
# First $(PYTHON) with its venv module (Debian ships it apart, as python3.11-venv); a .venv
# whose pip does not run (left by a failed `-m venv`, or its Python gone) is made afresh.
# One retry after a pause: a network blip while pip downloads must not fail the run.
PIP_INSTALL := $(BIN)/python -m pip install -q --retries 10 --timeout 60
$(STAMP): pyproject.toml
	@PYTHON=$(PYTHON) bash scripts/bootstrap.sh python
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)
	$(PIP_INSTALL) --upgrade pip || { sleep 15; $(PIP_INSTALL) --upgrade pip; }
	$(PIP_INSTALL) -e '.[test]' || { sleep 15; $(PIP_INSTALL) -e '.[test]'; }
	@touch $(STAMP)

venv: $(STAMP)

stack: venv bootstrap
	@$(STACK) up

stack-down:
	@$(STACK) down

stack-status:
	@$(STACK) status

test: venv bootstrap
	@bash scripts/run-tests.sh

test-unit: venv bootstrap
	$(BIN)/pytest tests/unit

test-integration: venv bootstrap
	@bash scripts/run-tests.sh tests/integration

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: venv
	$(BIN)/mypy streams

bench: venv
	@set -e; for script in benchmarks/bench_*.py; do \
		[ -e "$$script" ] || { echo "no benchmarks/bench_*.py"; exit 0; }; \
		echo "== $$script"; $(BIN)/python "$$script"; \
	done

demo: venv bootstrap
	$(BIN)/touchpoint demo

# The same scoring in-process on simulated traffic: no Kafka, no Redis.
demo-embedded: venv
	$(BIN)/touchpoint demo --embedded

# Stops this checkout's stack first: its data lives under deploy/local/.data.
clean:
	-@$(STACK) down
	rm -rf deploy/local/.data deploy/local/.cache .pytest_cache .mypy_cache .ruff_cache \
	       .hypothesis build dist var
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
