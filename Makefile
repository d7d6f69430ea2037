# Two commands for a fresh machine: `make demo` and `make test`. Both bring .venv up to date
# first; that step is a no-op in a second when pyproject.toml, the constraints and the set-up
# script are unchanged.
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
PYTEST_ARGS ?=

# Loopback-only Ray and offline hubs for everything started from here.
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export RAY_USAGE_STATS_ENABLED := 0
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export AWS_EC2_METADATA_DISABLED := true
export DS_ACCELERATOR := cpu
# JIT-built torch ops (DeepSpeed's CPU comm op) per venv, built by set-up (see scripts/setup_env.sh).
export TORCH_EXTENSIONS_DIR := $(abspath $(VENV))/torch-extensions

.PHONY: setup lock test demo lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints-cpu.txt requirements-cpu.lock scripts/setup_env.sh
	bash scripts/setup_env.sh $(VENV)
	touch $@

# Re-resolve every pinned version from pyproject.toml (run after editing dependencies; commit the lock).
lock:
	bash scripts/lock.sh $(VENV)

test: setup
	$(VENV)/bin/ruff check uniaudio tests bench
	$(PY) -m pytest -q --durations=25 $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/uniaudio demo --workdir demo-out

lint: setup
	$(VENV)/bin/ruff check uniaudio tests bench

bench: setup
	$(PY) bench/store_bench.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache
