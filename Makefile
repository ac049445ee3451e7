# The targets behind the README's commands. Each creates .venv by itself.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: demo test serve worker bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

# Links in the demo's receipts point at the address it serves on, unless one is configured.
demo: export MEGABOX_PUBLIC_URL ?= http://$(HOST):$(PORT)
demo: $(VENV)/.installed
	$(BIN)/megabox db upgrade
	$(BIN)/megabox demo seed
	$(BIN)/megabox serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

worker: $(VENV)/.installed
	$(BIN)/megabox worker

clean:
	rm -rf $(VENV) instance .pytest_cache
