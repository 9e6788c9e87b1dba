# gophermirror: the two commands of the README are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: all venv test lint demo bench fuzz clean

all: test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the project's metadata changes.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

venv: $(STAMP)

## Run the whole suite (peers included; with CI set, a missing peer fails).
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

## ruff and mypy, both clean.
lint: $(STAMP)
	$(BIN)/ruff check gophermirror tests bench
	$(BIN)/mypy

## Offline: serve the sample hole, mirror it, serve the mirror, fetch from it.
demo: $(STAMP)
	$(BIN)/python -m gophermirror.demo --root demo-mirror

## Throughput, memory and serving figures against baselines (see docs/benchmarks.md).
bench: $(STAMP)
	$(BIN)/python -m bench $(if $(N),--articles $(N),)

## Long fuzzing runs (not part of `make test`).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -p no:cacheprovider -m fuzz tests

clean:
	rm -rf $(VENV) demo-mirror .pytest_cache .mypy_cache .ruff_cache .hypothesis
