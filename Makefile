# One task runner, the same targets locally and in CI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-slow lint bench clean chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Set up (first time only) and serve on http://127.0.0.1:8000 with SQLite (kasar.db).
run: $(STAMP)
	$(BIN)/kasar serve

## Every test, on SQLite and PostgreSQL (PostgreSQL required when CI=true).
test: $(STAMP) chromium
	$(BIN)/python -m pytest -n 2 -m "not slow" -q

## The browser that tests/web drives: Debian's package (Playwright downloads none).
chromium:
	command -v chromium >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

## The slow batteries: crash loops, fuzzing, load.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no slow tests"; exit 0; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	for b in bench/[!_]*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) kasar.db kasar.db-wal kasar.db-shm
