# spikelab: one entry point for setup, demo, tests and benchmarks.
#   make demo   create .venv if missing, run the main job on built-in defaults
#   make test   create .venv (with test extras) if missing, run the whole test suite
#   make bench  LIF throughput benchmark (installs snnTorch and SpikingJelly into .venv)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test bench bench-continual bench-vpr bench-loihi bench-sweep venv clean

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
	$(BIN)/spikelab demo

test: $(VENV)/.test
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
