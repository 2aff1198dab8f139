# creditscope — every target installs what it needs, so a fresh clone needs only `make demo` / `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first, pinned to the CPU wheel these machines carry; `make TORCH_SPEC= ...` skips it (bring your own).
TORCH_SPEC ?= torch==2.13.0
DEMO_DB ?= .demo/demo.duckdb
PORT ?= 8501
STAMP := $(VENV)/.installed

.PHONY: install demo demo-db serve test lint browser bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if [ -n "$(TORCH_SPEC)" ]; then $(BIN)/pip install -q "$(TORCH_SPEC)"; fi
	$(BIN)/pip install -q -e ".[dev,ray]"
	touch $(STAMP)

demo-db: install
	$(BIN)/creditscope ingest sample_data/runs sample_data/real --db $(DEMO_DB) --quiet

demo: demo-db
	@echo "creditscope dashboard on http://127.0.0.1:$(PORT)  (Ctrl-C to stop)"
	$(BIN)/creditscope serve --db $(DEMO_DB) --port $(PORT)

# Debian's chromium for the real-browser test (Playwright cannot download its own browser here).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install browser lint
	$(BIN)/python -m pytest -q

# Scale benchmarks run on databases built from `creditscope synth` (cached in BENCH_DIR, GBs at 10M steps):
# `make bench` measures at 1M steps; `make bench BENCH_STEPS=1e7` gives the 10M-step figures (minutes).
BENCH_STEPS ?= 1e6
BENCH_DIR ?= /tmp/creditscope-bench

bench: install browser
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/credit.py --dir $(BENCH_DIR)
	$(BIN)/python bench/trees.py
	$(BIN)/python bench/queries.py --dir $(BENCH_DIR) --steps 1e6 --steps $(BENCH_STEPS)
	$(BIN)/python bench/pages.py --dir $(BENCH_DIR) --steps 5e5 --steps $(BENCH_STEPS)
	$(BIN)/python bench/prm.py
	$(BIN)/python bench/prm_ray.py
	$(BIN)/python bench/diff.py --dir $(BENCH_DIR)

clean:
	rm -rf .demo .pytest_cache .ruff_cache
