# Two commands: `make run` (the pipeline on BUSI) and `make test` (`make test-fast`:
# unit tests only). Both set up the Python 3.10 environment from requirements.lock
# on first use.

PYTHON310 := $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10; do \
               $$p -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock | cut -c1-12)

export TF_USE_LEGACY_KERAS := 1
export PYTHONPATH := $(CURDIR)
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: setup run run-sites test test-fast fuzz compile-kubeflow bench-quality bench-sites bench-site-variants predict operating-point serving bench-serving bench-pipeline bench-scale bench-not-sure bench-retraining bench-warm gpu-check clean

setup: $(STAMP)

$(STAMP): requirements.lock
	@test -n "$(PYTHON310)" || { echo "Python 3.10 not found: TFX 1.16 supports Python 3.9-3.10 only." >&2; exit 1; }
	test -x $(PY) || $(PYTHON310) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.lock
	rm -f $(VENV)/.installed-* && touch $@

run: setup
	$(PY) local_runner.py $(ARGS)

# BUSI and BUS-BRA in one run, each a named site (docs/sites.md), into outputs/sites.
BUSI_DIR ?= $(firstword $(wildcard data/Dataset_BUSI_with_GT ../shared/data/busi/Dataset_BUSI_with_GT))
BUS_BRA_DIR ?= $(firstword $(wildcard data/bus_bra ../shared/data/bus_bra))
run-sites: setup
	@test -n "$(BUSI_DIR)" -a -n "$(BUS_BRA_DIR)" || { echo "make run-sites needs BUSI and BUS-BRA: set BUSI_DIR and BUS_BRA_DIR (docs/sites.md)." >&2; exit 2; }
	$(PY) local_runner.py --data-root busi=$(BUSI_DIR) --data-root bus_bra=$(BUS_BRA_DIR) \
	  --manifest-columns bus_bra=bus_bra --output-dir outputs/sites $(ARGS)

# One pytest worker per core, whole files to a worker in the order conftest.py
# collects them (end-to-end files first): the slow end-to-end files (each a chain
# of pipeline runs) start at once and the unit tests fill in beside them.
PYTEST_ARGS ?= -n 2 --dist loadfile --no-loadscope-reorder

# Every test, as CI runs them, with the 20 slowest listed at the end.
test: setup
	PYTHONUNBUFFERED=1 $(PY) -m pytest $(PYTEST_ARGS) --durations=20

# The unit tests only: those marked e2e (pipeline and runner runs) and integration
# (executors, Beam jobs, the ImageNet network's training, other processes) are left out.
test-fast: setup
	PYTHONUNBUFFERED=1 $(PY) -m pytest $(PYTEST_ARGS) -m 'not e2e and not integration' --durations=10

# The fuzzer's long profile: new random data roots, flags and serving directories
# against the invariants (docs/invariants.md); FUZZ_EXAMPLES=N examples per property
# (default 200).
fuzz: setup
	FUZZ_PROFILE=long $(PY) -m pytest -q -p no:cacheprovider --hypothesis-show-statistics \
	  --hypothesis-seed=$${FUZZ_SEED:-$$(date +%s)} tests/fuzz/

# The Kubeflow Pipelines package; ARGS needs --image and the gs:// paths (docs/kubeflow.md).
compile-kubeflow: setup
	$(PY) kubeflow_runner.py $(ARGS)

# Seed CNN vs the default model on BUSI, side by side (bench/README.md);
# ARGS="--folds 5" for cross-validation.
bench-quality: setup
	$(PY) bench/quality.py $(ARGS)

# Leave one site out: lesion_net trained on BUS-BRA's training split, tested on its test
# split beside the radiologist's BI-RADS and on BUSI (bench/README.md).
bench-sites: setup
	$(PY) bench/leave_site_out.py $(ARGS)

# What carries the model to a site it never saw: lesion_net variants trained on BUSI,
# each scored on BUS-BRA as trained and with its batch-norm statistics adapted to half
# of BUS-BRA's patients (bench/README.md); ARGS="--variants lesion_net" for one.
bench-site-variants: setup
	$(PY) bench/site_variants.py $(ARGS)

# Classify images with the pushed model: ARGS="IMAGE_OR_FOLDER... [--server URL] [--json]".
predict: setup
	$(PY) predict.py $(ARGS)

# A new site's malignant threshold for the served model, from its first labelled export:
# ARGS="--site NAME --data-root NAME=PATH [--manifest-columns NAME=PRESET] [--replace]
# [--adapt]" (docs/serving.md); `make predict ARGS="... --site NAME"` decides at it. With
# --adapt, a copy of the model adapted to the site's scans, in outputs/site_models/NAME.
operating-point: setup
	$(PY) site_threshold.py $(ARGS)

# The served version: ARGS="[--server URL] list | log | rollback --to VERSION | canary VERSION
# | promote VERSION | complete | repair" (docs/serving.md: a switch is complete once the server
# at --server has loaded the version).
serving: setup
	$(PY) serving_admin.py $(ARGS)

# Latency and throughput of serving_images against the bare network (bench/README.md).
bench-serving: setup
	$(PY) bench/serving.py $(ARGS)

# The whole pipeline on BUSI against bare training of its model (bench/README.md);
# ARGS="--epochs 2" measures mostly the fixed cost.
bench-pipeline: setup
	$(PY) bench/pipeline_bench.py $(ARGS)

# ExampleGen -> StatisticsGen -> Transform on 1x, 10x, 50x BUSI-like data (bench/README.md);
# ARGS="--sizes 1,2,3" for a shorter run.
bench-scale: setup
	$(PY) bench/scale_bench.py $(ARGS)

# Which "not sure" signal separates the trained model's wrong decisions from its right
# ones, on BUSI's eval and test splits and BUS-BRA (bench/README.md); ARGS="--pipeline-root DIR".
bench-not-sure: setup
	$(PY) bench/not_sure.py $(ARGS)

# Scheduled retraining on BUS-BRA laid out as dated exports by scanner: the four cases
# (docs/retraining.md); ARGS="--epochs 10" trains longer.
bench-retraining: setup
	$(PY) bench/retraining_scenario.py $(ARGS)

# Warm-started retraining against training from scratch on BUSI grown by a tenth
# (bench/README.md); ARGS="--epochs 6 --warm-epochs 2" for shorter arms.
bench-warm: setup
	$(PY) bench/warm_start.py $(ARGS)

# The Trainer on this machine's GPU against its CPU, and its model served on the CPU;
# one line and exit 1 without a GPU (bench/gpu_check.py).
gpu-check: setup
	$(PY) bench/gpu_check.py $(ARGS)

clean:
	rm -rf outputs
