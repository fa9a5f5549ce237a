PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest tests

demo: $(STAMP)
	PYTHON=$(PY) FLUX=$(VENV)/bin/flux $(VENV)/bin/flux start sh examples/demo.sh

bench: $(STAMP)
	$(PY) bench/rpc.py
	$(PY) bench/codec.py
	$(PY) bench/floor.py
	$(PY) bench/bulksubmit.py
	$(PY) bench/bulksubmit.py --test-size=3
	$(PY) bench/executor.py
	$(PY) bench/pipeline.py
	$(PY) bench/latency.py
	$(PY) bench/memory.py

clean:
	rm -rf $(VENV) build src/*.egg-info
