# Two commands: `make demo` and `make test`. Both create .venv on first use and
# are idempotent: a second run only reinstalls when pyproject.toml changed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP_DEMO := $(VENV)/.installed-demo
STAMP_TEST := $(VENV)/.installed-test
SPECS  := $(wildcard specs/*.yaml)
# The demo reads the specs out in two runs into one folder, as two scheduler jobs would: the A/B tests,
# then the rollout and the test plan. The results store keeps both runs; the index and programme pages show all.
AB_SPECS    := $(shell grep -L -E '^kind: *(did|power)' $(SPECS))
OTHER_SPECS := $(filter-out $(AB_SPECS),$(SPECS))
OUT    ?= reports

.PHONY: demo test test-fast lint bench bench-speed data clean lab screenshots

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(STAMP_DEMO): pyproject.toml | $(PY)
	$(PIP) install -e ".[lab]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

$(STAMP_TEST): pyproject.toml | $(PY)
	$(PIP) install -e ".[test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

demo: $(STAMP_DEMO)
	$(VENV)/bin/abkit readout $(AB_SPECS) --out $(OUT) --jobs 2
	$(VENV)/bin/abkit readout $(OTHER_SPECS) --out $(OUT) --jobs 2
	@echo "portfolio: $(OUT)/index.html   programme: $(OUT)/programme.html"

# Lint, format and type checks first (ruff, mypy: configured in pyproject.toml), then every test;
# the slowest tests are listed at the end so a slow CI run says where its time went.
test: $(STAMP_TEST) lint
	$(PY) -m pytest -q --durations=20

lint: $(STAMP_TEST)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test-fast: $(STAMP_TEST)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP_TEST)
	$(PY) benchmarks/bench_ab.py

# The speed figures side by side (benchmarks/README.md): abkit vs hand-written DuckDB sums and tea-tasting,
# the metric-count curve on every engine (and its plot), one readout vs a trivial papermill notebook.
# Adds the [bench] extra (tea-tasting); Spark needs Java 17 (--no-spark otherwise). About 15 minutes.
bench-speed: $(STAMP_TEST)
	$(PIP) install -e ".[test,bench]"
	$(PY) benchmarks/bench_engines.py --json benchmarks/engines_figures.json
	$(PY) benchmarks/bench_readout.py --json benchmarks/readout_figures.json

# Regenerate the small committed samples in data/ (seeded, deterministic).
data: $(STAMP_TEST)
	$(PY) -m abkit.simulate --write-samples data

# JupyterLab on the analyst walkthroughs in notebooks/ (installs the `lab` extra first).
lab: $(STAMP_DEMO)
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks

# The demo readouts as a person sees them: 1280x800 and full-page PNGs in $(OUT)/screenshots/.
CHROMIUM_FLAGS := --headless --no-sandbox --disable-gpu --disable-background-networking \
	--disable-component-update --disable-sync --no-first-run --hide-scrollbars
screenshots: demo
	@command -v chromium >/dev/null || { echo "chromium not found: apt-get install -y chromium"; exit 1; }
	@mkdir -p $(OUT)/screenshots
	@for page in $(OUT)/*/readout.html $(OUT)/index.html $(OUT)/programme.html; do \
		name=$$(basename $$(dirname $$page)); [ "$$(dirname $$page)" = "$(OUT)" ] && name=$$(basename $$page .html); \
		profile=$$(mktemp -d); \
		chromium $(CHROMIUM_FLAGS) --user-data-dir=$$profile --window-size=1280,800 \
			--screenshot=$(OUT)/screenshots/$$name.png "file://$$(realpath $$page)" 2>/dev/null; \
		chromium $(CHROMIUM_FLAGS) --user-data-dir=$$profile --window-size=1280,7000 \
			--screenshot=$(OUT)/screenshots/$$name-full.png "file://$$(realpath $$page)" 2>/dev/null; \
		rm -rf $$profile; echo $(OUT)/screenshots/$$name.png; \
	done

clean:
	rm -rf $(VENV) reports .pytest_cache
