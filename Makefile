# SketchLab. Quick start: `make run` (set up + start the app), `make test` (set up + run every test).
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/quickdraw
export GRADIO_ANALYTICS_ENABLED := False
export PYTHONUNBUFFERED := 1

.PHONY: setup setup-train setup-dev run test test-fast browser lint format bench models classifiers generator-update clean

# Three installs, each on top of the one before: runtime (what app.py serves with, no torch), train, dev (tests).
$(VENV)/.runtime: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

$(VENV)/.train: $(VENV)/.runtime requirements-train.txt
	$(VENV)/bin/pip install -q torch==2.13.0  # first, alone: takes the local CPU wheel, not the CUDA build
	$(VENV)/bin/pip install -q -r requirements-train.txt
	touch $@

$(VENV)/.dev: $(VENV)/.train requirements-dev.txt
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime
setup-train: $(VENV)/.train
setup-dev: $(VENV)/.dev

run: setup  ## install the runtime only (no torch) and start the app on http://127.0.0.1:7860 (HOST=0.0.0.0 to expose, PORT=... to move)
	$(PY) app.py $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

browser:  ## Debian's Chromium for the browser tests (Playwright cannot download one here)
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

test: setup-dev browser  ## lint + every test (browser tests included)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -rs

test-fast: setup-dev  ## unit tests only
	$(PY) -m pytest -q -m "not browser and not slow"

lint: setup-dev
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

format: setup-dev
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

bench: setup-train  ## print the benchmark tables
	$(PY) -m bench

models: setup-train  ## train and export every shipped model from scratch on $(DATA) (the classifiers, then the generator bounded at 180 min: training.train_all --generator-minutes)
	$(PY) -m training.train_all --data $(DATA)

classifiers: setup-train  ## train and export the two classifiers and their fusion from scratch (no generator; 74 min measured on 2 cores, 2026-12-07)
	$(PY) -m training.train_all --data $(DATA) --skip-generator

generator-update: setup-train  ## continue the shipped generator on $(DATA) for 100 min, then export and judge it (measured: docs/generator.md, not shipped)
	$(PY) -m training.generator_from_onnx --out checkpoints/generator_from_onnx/last.pt
	$(PY) -m training.train_generator --data $(DATA) --out checkpoints/generator_shipped --no-resume \
		--init checkpoints/generator_from_onnx/last.pt --lr 3e-4 --lr-milestones 1800 --kl-eta-min 1.0 --max-minutes 100 --threads 2
	$(PY) -m training.export_generator
	$(PY) -m training.generator_prior --data $(DATA)
	$(PY) -m training.evaluate_generator --data $(DATA) --samples 30 --temperature 0.5 --quality-samples 30 --json runs/generator_eval.json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
