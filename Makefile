# Polysemanticity & Superposition: the two commands are `make book` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ASSETS := book/_assets/vendor/.fetched

.PHONY: help setup book test lab bench notebooks check-notebooks grade clean

help:
	@echo "make book   set up .venv and build the website into _build/html (open _build/html/index.html)"
	@echo "make test   set up .venv and run the whole test suite (includes a full book build)"
	@echo "make lab    start JupyterLab on the exercises"
	@echo "make bench  run the chapters' benchmarks, write _build/bench/results.{json,md}"
	@echo "make notebooks  regenerate pages, exercises and solutions from their sources"

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(ASSETS): tools/fetch_assets.py $(STAMP)
	$(BIN)/python tools/fetch_assets.py

setup: $(STAMP) $(ASSETS)

book: setup
	$(BIN)/python tools/build_book.py
	@echo "Website built: open _build/html/index.html"

test: setup
	bash tools/ensure_chromium.sh
	$(BIN)/python -m pytest tests solutions --nbval-lax -p no:cacheprovider $(PYTEST_ARGS)

lab: setup
	$(BIN)/jupyter lab --notebook-dir=exercises $(if $(filter 0,$(shell id -u)),--allow-root,)

bench: setup
	$(BIN)/python -m course_utils.bench

notebooks: $(STAMP)
	$(BIN)/python -m course_utils.authoring build

check-notebooks: $(STAMP)
	$(BIN)/python -m course_utils.authoring check

grade: $(STAMP)
	$(BIN)/python -m course_utils.grade $(NB)

clean:
	rm -rf _build .pytest_cache
