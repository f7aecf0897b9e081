# Two commands: `make demo` and `make test`. Both create .venv on first use and
# are idempotent: a second run only reinstalls when pyproject.toml changed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP_DEMO := $(VENV)/.installed-demo
STAMP_TEST := $(VENV)/.installed-test
SPECS  := $(wildcard specs/*.yaml)
OUT    ?= reports

.PHONY: demo test test-fast bench data clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel

$(STAMP_DEMO): pyproject.toml | $(PY)
	$(PIP) install -e ".[lab]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

$(STAMP_TEST): pyproject.toml | $(PY)
	$(PIP) install -e ".[test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

demo: $(STAMP_DEMO)
	$(VENV)/bin/abkit readout $(SPECS) --out $(OUT)

test: $(STAMP_TEST)
	$(PY) -m pytest -q

test-fast: $(STAMP_TEST)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP_TEST)
	$(PY) benchmarks/bench_ab.py

# Regenerate the small committed samples in data/ (seeded, deterministic).
data: $(STAMP_TEST)
	$(PY) -m abkit.simulate --write-samples data

clean:
	rm -rf $(VENV) reports .pytest_cache
