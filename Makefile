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
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=15

# The tests most exposed to the date once more under a faked weekend date: promotion, the CLI and the
# daemon's releases to production. They must not notice (needs faketime: apt-get install faketime).
# One Git flavour, and without the daemon tests that never release (shutdown, crashes, two daemons,
# hooks, log lines): those do not read the date, and CI's time is better spent elsewhere.
WEEKEND_SKIP = git-cli or sigterm or kill_9 or two_daemons or webhooks or every_log_line
test-weekend: $(STAMP)
	faketime '$(WEEKEND)' $(BIN)/python -m pytest -q -n 2 --dist loadgroup \
		tests/test_promotion.py tests/test_cli.py tests/test_daemon.py -k "not ($(WEEKEND_SKIP))"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

schemas: $(STAMP)
	$(BIN)/reconciler schemas export schemas

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .grimp_cache .import_linter_cache
