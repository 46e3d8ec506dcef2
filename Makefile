# `make demo` and `make test` work on a fresh machine with Python 3.11: each creates .venv when
# missing, installs the project, then runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-weekend lint typecheck bench schemas clean

# A Saturday afternoon, inside the example's Friday 16:00 + 64 h deny window (tests/fakeclock.py).
WEEKEND ?= 2026-12-05 12:00:00

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/reconciler demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

# The tests most exposed to the date (releases to production, the CLI, the daemon) once more under a
# faked weekend date: they must not notice (needs faketime: apt-get install faketime).
test-weekend: $(STAMP)
	faketime '$(WEEKEND)' $(BIN)/python -m pytest -q -n 2 --dist loadgroup \
		tests/test_promotion.py tests/test_cli.py tests/test_daemon.py tests/test_windows.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

schemas: $(STAMP)
	$(BIN)/reconciler schemas export schemas

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
