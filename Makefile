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

clean:
	rm -rf $(VENV) build src/*.egg-info
