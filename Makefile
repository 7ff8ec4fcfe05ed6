# SketchLab. Quick start: `make run` (set up + start the app), `make test` (set up + run every test).
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/quickdraw
export GRADIO_ANALYTICS_ENABLED := False
export PYTHONUNBUFFERED := 1

.PHONY: setup run test test-fast browser lint format bench models classifiers clean

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q torch==2.13.0  # first, alone: takes the local CPU wheel, not the CUDA build
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

setup: $(VENV)/.installed

run: setup  ## start the app on http://127.0.0.1:7860 (HOST=0.0.0.0 to expose, PORT=... to move)
	$(PY) app.py $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

browser:  ## Debian's Chromium for the browser tests (Playwright cannot download one here)
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

test: setup browser  ## lint + every test (browser tests included)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -rs

test-fast: setup  ## unit tests only
	$(PY) -m pytest -q -m "not browser and not slow"

lint: setup
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

format: setup
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

bench: setup  ## print the benchmark tables
	$(PY) -m bench

models: setup  ## train and export every shipped model from scratch on $(DATA)
	$(PY) -m training.train_all --data $(DATA)

classifiers: setup  ## train and export the two classifiers and their fusion from scratch (no generator; 50-82 min measured on 2 cores)
	$(PY) -m training.train_all --data $(DATA) --skip-generator

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
