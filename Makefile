# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint system-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

## run: a short offline campaign on the built-in clip (the lab's main job)
run: $(VENV)/.installed system-deps
	$(BIN)/codeclab doctor
	$(BIN)/codeclab run

## test: lint, type-check and run the whole test suite
test: $(VENV)/.installed system-deps
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

## system-deps: Debian packages (bubblewrap, libseccomp for the sandbox; PostgreSQL, Chromium for tests)
system-deps:
	@bash scripts/system-deps.sh

bench: $(VENV)/.installed
	$(BIN)/python bench/metrics_speed.py
	$(BIN)/python bench/sandbox_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
