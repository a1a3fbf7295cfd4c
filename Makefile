# Quick start: `make demo` (train on the bundled Fashion-MNIST sample, draw garments), `make test`,
# `make studio` (the REST API under the studio).
# Each creates its own virtual environment in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch; set TORCH=torch (or a CUDA wheel spec) to choose another.
TORCH ?= torch==2.13.0

.PHONY: demo test install clean bench studio

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e .
	touch $@

# torch-fidelity is a test-only peer for the FID network and metrics. --no-deps: its requirements
# would pull torchvision and a second torch; the tests stub the torchvision import it never uses.
$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps "torch-fidelity==0.4.0"
	touch $@

$(VENV)/.installed-studio: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[studio]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m genforge demo --out demo-output

# the studio's job service and REST API on http://127.0.0.1:8765 (docs at /docs)
studio: $(VENV)/.installed-studio
	$(PY) -m genforge studio

test: $(VENV)/.installed-test
	$(PY) -m pytest -q -n 2 tests

bench: $(VENV)/.installed-test
	$(PY) benchmarks/bench_unet.py

clean:
	rm -rf demo-output runs
