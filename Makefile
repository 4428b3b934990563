# Two commands on a fresh machine: `make run` (set up + segment the bundled samples) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= model,cluster,server,workbench,dev

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/spheroseg segment resources/samples --out results/

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy cluster server workbench

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) results .pytest_cache .mypy_cache .ruff_cache
