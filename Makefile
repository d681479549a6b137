# Polysemanticity & Superposition: the two commands are `make book` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ASSETS := book/_assets/vendor/.fetched
WHEELHOUSE := _build/wheelhouse/.complete

.PHONY: help setup book test lab dist wheelhouse bench notebooks check-notebooks grade clean

help:
	@echo "make book   set up .venv and build the website into _build/html (open _build/html/index.html)"
	@echo "make test   set up .venv and run the whole test suite (includes a full book build)"
	@echo "make lab    JupyterLab on the whole course: chapter notebooks (live explorers), exercises, solutions"
	@echo "make dist   build + check sdist and wheel, install the wheel in a fresh venv with only torch, run notebooks"
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

test: setup $(WHEELHOUSE)
	bash tools/ensure_chromium.sh
	$(BIN)/python -m pytest tests solutions --nbval-lax -p no:cacheprovider --durations=30 $(PYTEST_ARGS)

# the whole course in the .venv's Python (its bin first on PATH: `python` in terminals and ! cells); no npm
lab: $(STAMP)
	$(BIN)/python tools/lab.py

# wheels of everything the package needs, at the tested pins, so that `make dist` and its test run offline
$(WHEELHOUSE): pyproject.toml constraints.txt | $(STAMP)
	$(BIN)/python tools/dist.py wheelhouse

wheelhouse: $(WHEELHOUSE)

dist: $(STAMP) $(WHEELHOUSE)
	$(BIN)/python tools/dist.py all

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
