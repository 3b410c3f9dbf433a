# starlabel: `make demo` and `make test` each create .venv if missing and install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned: the plain name would pull several GB of CUDA wheels.
TORCH  := torch==2.13.0
# new plugin packages need a fresh editable install
PKG_FILES := pyproject.toml $(wildcard plugins/*/__init__.py)

.PHONY: demo test test-all bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-test: $(PKG_FILES) tests/third_party/starlabel_example/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[test,demo]" -e tests/third_party/starlabel_example
	touch $@

$(VENV)/.installed-demo: $(PKG_FILES) | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[demo]"
	touch $@

## demo: set up and run the end-to-end demo on the real Gaia XP x APOGEE DR17 library (offline)
demo: $(VENV)/.installed-demo
	$(BIN)/starlabel demo gaia_xp_apogee_dr17

## test: set up and run the default test suite (slow tests excluded)
test: $(VENV)/.installed-test
	$(BIN)/ruff check framework plugins tests bench
	$(BIN)/python -m pytest

## test-all: also the slow tests
test-all: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m ""

## bench: the benchmark scripts (each prints a table with its baseline measured in the same run)
bench: $(VENV)/.installed-test
	$(BIN)/python bench/inference.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/synth.py
	$(BIN)/python bench/predict_1e6.py

clean:
	rm -rf $(VENV) build *.egg-info framework/*.egg-info
