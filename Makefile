# Shortcuts for dev.py, which needs nothing but Python 3.11+.
PYTHON ?= python3

.PHONY: example test bench setup clean
example test bench setup:
	$(PYTHON) dev.py $@

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
