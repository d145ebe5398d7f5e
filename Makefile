# Two entry points for a newcomer: `make demo` (main job: the app, offline) and `make test`; `make photos` is the headless main job.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: venv demo photos test bench notebook-docs clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# CPU machines: this exact pin resolves to the local CPU wheel (no CUDA download).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,faces,app,notebooks]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) spaces_app.py

photos: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m e3dge.cli demo --out outputs/demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -n 2 -q

notebook-docs: $(STAMP)
	E3DGE_WRITE_NOTEBOOK_DOCS=1 HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests/test_notebooks.py -k runs_on

bench: $(STAMP)
	$(PY) benchmarks/generator.py

clean:
	rm -rf $(VENV) outputs .pytest_cache
