# spikelab: one entry point for setup, demo, tests and benchmarks.
#   make demo   create .venv if missing, run the main job on built-in defaults
#   make test   create .venv (with test extras) if missing, run the whole test suite
#   make bench  LIF throughput benchmark (installs snnTorch and SpikingJelly into .venv)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test bench bench-continual bench-vpr bench-loihi bench-sweep venv lava-env clean

venv: $(VENV)/.base

$(VENV)/.base: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e .
	@touch $@

$(VENV)/.test: $(VENV)/.base
	$(PIP) install -e ".[test]"
	@touch $@

$(VENV)/.bench: $(VENV)/.base
	$(PIP) install -e ".[bench]"
	# SpikingJelly pins torchaudio/torchvision releases that conflict with torch 2.13: no deps.
	$(PIP) install --no-deps "spikingjelly==2.0.0"
	@touch $@

demo: $(VENV)/.base
	@$(MAKE) --no-print-directory lava-env || echo "NOTE: no Lava environment (reason above); the demo skips the Lava comparison"
	$(BIN)/spikelab demo

# Lava (lava-nc 0.10) needs Python 3.10 and numpy<2: its own environment .venv-lava, built on
# demand (spikelab.hardware.lava_env finds Python 3.10 via SPIKELAB_PYTHON310, pyenv or PATH).
lava-env: $(VENV)/.base
	$(BIN)/python -m spikelab.hardware.lava_env --create

# The Lava tests (tests/test_hardware_lava.py) run Lava in .venv-lava as a subprocess; if the
# environment cannot be built they fail with the reason instead of being skipped.
test: $(VENV)/.test
	@$(MAKE) --no-print-directory lava-env || echo "WARNING: the Lava environment could not be built (reason above); the Lava tests will fail"
	$(BIN)/python -m pytest -q

bench: $(VENV)/.bench
	$(BIN)/python benchmarks/lif_throughput.py

bench-continual: $(VENV)/.base
	$(BIN)/python benchmarks/continual_pmnist.py

bench-vpr: $(VENV)/.test
	$(BIN)/python benchmarks/place_recognition.py

bench-loihi: $(VENV)/.test
	$(BIN)/python benchmarks/loihi_export.py

bench-sweep: $(VENV)/.test
	$(BIN)/python benchmarks/sweep_scaling.py

clean:
	rm -rf $(VENV) build *.egg-info
