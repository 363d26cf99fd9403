# MockFlow: `make run` serves the app, `make test` runs the whole suite. Both set up what they need.
VENV := .venv
PYTHON := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: run test system-packages

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): requirements.txt | $(VENV)/bin/python
	$(PYTHON) -m pip install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(RUNTIME_STAMP)

system-packages:
	./scripts/install-system-packages.sh

run: $(RUNTIME_STAMP)
	$(PYTHON) app.py

test: $(DEV_STAMP) system-packages
	$(PYTHON) -m pytest
