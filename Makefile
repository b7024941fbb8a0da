# Two commands for a newcomer: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: demo test test-slow bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[test]"
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) examples/quickstart.py

test: $(VENV)/.installed-test
	$(PY) -m pytest

test-slow: $(VENV)/.installed-test
	$(PY) -m pytest -m slow || [ $$? -eq 5 ]  # exit 5: no test is marked slow yet

bench: $(VENV)/.installed-test  # the benchmarks load scikit-learn's data sets
	$(PY) benchmarks/bench_engine.py
	$(PY) benchmarks/bench_nn.py
	$(PY) benchmarks/bench_distributions.py
	$(PY) benchmarks/bench_svi.py
	$(PY) benchmarks/bench_nuts.py

lint: $(VENV)/.installed-test
	$(PY) -m pip install -q ruff && $(VENV)/bin/ruff check probdl tests benchmarks examples

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis benchmarks/results
