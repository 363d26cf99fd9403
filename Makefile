# MockFlow: `make run` serves the app, `make test` runs the whole suite. Both set up what they need.
VENV := .venv
PYTHON := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
VENDOR_JS := static/vendor/livekit-client.umd.js

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

# The pinned livekit-client (package-lock.json) is served from static/vendor/, never from a CDN.
$(VENDOR_JS): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p static/vendor
	cp node_modules/livekit-client/dist/livekit-client.umd.js $@

system-packages:
	./scripts/install-system-packages.sh

run: $(RUNTIME_STAMP) $(VENDOR_JS)
	$(PYTHON) app.py

test: $(DEV_STAMP) $(VENDOR_JS) system-packages
	$(PYTHON) -m pytest
