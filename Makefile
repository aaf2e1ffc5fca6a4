# The two commands the README opens with. Both work on a fresh machine with only Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: example test setup lint types unit bench clean

$(BIN)/castline: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

setup: $(BIN)/castline

## Produce the example episode offline (no API key, no network).
example: setup
	$(BIN)/castline produce examples/heat-island/show.yaml \
		--topic "Why cities run hot, who pays for it, and what actually cools them" \
		--source examples/heat-island/sources/cities-and-heat.md \
		--source examples/heat-island/sources/health-and-equity.html \
		--source examples/heat-island/sources/cooling-strategies.pdf

## Lint, type-check and run the whole test suite.
test: setup lint types unit

lint:
	$(BIN)/ruff check castline tests bench
	$(BIN)/ruff format --check castline tests bench

types:
	$(BIN)/mypy

unit:
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python bench/bench_offline_episode.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
