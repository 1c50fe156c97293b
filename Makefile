# The two commands of the README's quick start. Both build .venv from this repo's own files.
PY ?= python3.11
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test lint bench-simulator

$(BIN)/induce: pyproject.toml
	@command -v $(PY) >/dev/null || { echo "error: $(PY) not found; install Python 3.11 or run make PY=python3"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e ".[dev]"
	@touch $@

demo: $(BIN)/induce
	$(BIN)/induce solve

test: $(BIN)/induce
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(BIN)/induce
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench-simulator: $(BIN)/induce
	$(BIN)/induce bench-simulator
