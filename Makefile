PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test lint demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m compileall -q src  # bytecode for every command's start-up, even under PYTHONDONTWRITEBYTECODE
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest tests

# pyflakes and a few bugbear checks (pyproject.toml [tool.ruff]); CI runs it first
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples

demo: $(STAMP)
	PYTHON=$(PY) FLUX=$(VENV)/bin/flux $(VENV)/bin/flux start sh examples/demo.sh

# make bench BENCH_OUT=DIR also writes each job bench's figures to DIR/*.json;
# bench/compare.py DIR1 DIR2 compares two such runs (before/after a change).
BENCH_OUT ?=
bench_json = $(if $(BENCH_OUT),--json $(BENCH_OUT)/$(1).json)

bench: $(STAMP)
	$(if $(BENCH_OUT),mkdir -p $(BENCH_OUT))
	$(PY) bench/rpc.py
	$(PY) bench/codec.py
	$(PY) bench/floor.py $(call bench_json,floor)
	$(PY) bench/bulksubmit.py $(call bench_json,bulksubmit)
	$(PY) bench/bulksubmit.py --test-size=3 $(call bench_json,bulksubmit-size3)
	$(PY) bench/executor.py $(call bench_json,executor)
	$(PY) bench/pipeline.py $(call bench_json,pipeline)
	$(PY) bench/latency.py $(call bench_json,latency)
	$(PY) bench/memory.py $(call bench_json,memory)
	$(PY) bench/multinode.py
	$(PY) bench/overlay.py
	$(PY) bench/failure.py
	$(PY) bench/nested.py $(call bench_json,nested)
	$(PY) bench/sched.py

clean:
	rm -rf $(VENV) build src/*.egg-info
