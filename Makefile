# Two entry points for a fresh machine: `make demo` (the main job) and `make test`.
# Each creates or reuses .venv and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lasp-edge demo

test: $(STAMP) lint typecheck
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check sdk gateway tests bench examples
	$(VENV)/bin/ruff format --check sdk gateway tests bench examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --config-file micropython/mypy.ini \
	    --custom-typeshed-dir "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
