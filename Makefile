# ptsdk task runner. `make example` and `make test` work on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
PTSDK := $(VENV)/bin/ptsdk
LINT_PATHS := sdk plugins backends matrix tests bench examples tools distributions
# Backends that are distributions of their own (distributions/NAME/pyproject.toml), registered through the
# `ptsdk` entry-point group like any third-party plugin: installed beside ptsdk, editable.
DISTRIBUTIONS := $(foreach d,$(sort $(wildcard distributions/*/pyproject.toml)),-e $(dir $(d)))

.PHONY: setup envs model example test test-core lint bench clean

setup: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml $(wildcard distributions/*/pyproject.toml)
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,compare]' $(DISTRIBUTIONS)
	touch $@

envs: setup  ## every backend's environment, built once under $PTSDK_HOME (default ~/.cache/ptsdk)
	$(PTSDK) env create trl
	$(PTSDK) env create axolotl
	$(PTSDK) env create verl
	$(PTSDK) env create openrlhf
	$(PTSDK) env create unsloth
	$(PTSDK) env create art

model: envs  ## the tiny local model the examples train
	$$($(PTSDK) env python trl) examples/make_tiny_model.py

example: setup  ## the main job, end to end: SFT-LoRA on the bundled arithmetic data with TRL
	$(PTSDK) env create trl
	$$($(PTSDK) env python trl) examples/make_tiny_model.py
	$(PTSDK) run examples/jobs/sft_lora.yaml --backend trl

# Tests run in TEST_JOBS pytest-xdist workers, a file to a worker and every Ray user on one (tests/conftest.py):
# most of a framework test's time is single-threaded start-up, so two workers use both cores of a small machine.
TEST_JOBS ?= 2
test: model  ## the parity tests translate the examples, which name the tiny model
	PTSDK_REQUIRE_BACKENDS=trl,axolotl,verl,openrlhf,unsloth,art $(PY) -m pytest -n $(TEST_JOBS) --dist loadgroup

test-core: setup  ## no framework needed
	$(PY) -m pytest -n $(TEST_JOBS) --dist loadgroup --ignore=tests/backends

lint: $(VENV)/.lint-installed  ## formatting, lint rules and types (tool versions pinned in the `lint` extra)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(PY) tools/typecheck.py

$(VENV)/.lint-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,compare,lint]' $(DISTRIBUTIONS)
	touch $@

bench: model
	$(PY) bench/bench_cli.py

clean:
	rm -rf $(VENV) runs
