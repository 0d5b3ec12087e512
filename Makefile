# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck bench experiment clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(PY) main.py

LINTED := core workbench tests benchmarks main.py

# Lint and types first (seconds) so a style or type error fails before the suite (minutes).
# The suite runs one worker per core (at most 4), a test file per worker so that a file's
# shared fixtures are built once; `pytest tests/...` by hand runs in one process.
# One TensorFlow thread per worker: with a worker per core, TF's own pools only fight each
# other (a heavy subset took 66-70 s against 77-79 s with TF's defaults, 2-core VM).
test: lint typecheck
	QT_QPA_PLATFORM=offscreen TF_CPP_MIN_LOG_LEVEL=2 TF_NUM_INTRAOP_THREADS=1 \
		TF_NUM_INTEROP_THREADS=1 $(PY) -m pytest -q -ra \
		-n auto --maxprocesses 4 --dist loadfile --durations=25

lint: $(STAMP)
	$(PY) -m ruff check $(LINTED)
	$(PY) -m ruff format --check $(LINTED)

typecheck: $(STAMP)
	$(PY) -m mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
