# soundfleet — set-up and checks. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: chaos chaos-real bench-hostile bench-metrics soak bench-peers bench-requests install demo test lint unit integration acceptance test-external bench bench-ingest bench-simulator bench-leasing bench-revisit clean bench-sweep bench-network bench-spam bench-virality

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[all,dev,bench]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/soundfleet demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy schemas runtime coordinator crawler scoring simulator soundfleet migrations benchmarks
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: install
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

acceptance: install
	$(BIN)/pytest tests/acceptance $(PYTEST_ARGS)

# The integration suite again, against the server DATABASE_URL names (CI: the local PG 15).
test-external: install
	@test -n "$$DATABASE_URL" || (echo "set DATABASE_URL" && exit 2)
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

bench-peers: install
	$(PY) -m benchmarks.vs_peers

bench-requests: install
	$(PY) -m benchmarks.requests

bench-ingest: install
	$(PY) -m benchmarks.ingest

bench-simulator: install
	$(PY) -m benchmarks.simulator

bench-sweep: install
	$(PY) -m benchmarks.sweep

bench-leasing: install
	$(PY) -m benchmarks.leasing

# A 300 MB body and a looping next_href against a real worker: memory, reasons, the rest.
bench-hostile: install
	$(PY) -m benchmarks.hostile

bench-metrics: install
	$(PY) -m benchmarks.metrics_scrape

bench-revisit: install
	$(PY) -m benchmarks.revisit

bench-network: install
	$(PY) -m benchmarks.network

# The spam model on the hard world (the targets' regime), then on the easy one.
bench-spam: install
	$(PY) -m benchmarks.spam --regime hard
	$(PY) -m benchmarks.spam --regime easy

bench-virality: install
	$(PY) -m benchmarks.virality

bench: bench-ingest bench-simulator bench-leasing bench-revisit bench-sweep bench-network bench-spam bench-virality

clean:
	rm -rf $(VENV) .pytest_pgdata .mypy_cache .ruff_cache .pytest_cache

# Full-size chaos runs (kills workers, restarts the coordinator and the embedded
# PostgreSQL): the default fault mix, then the real platform's profile (DataDome 403s,
# text 429s, ms cursors, URN web-profiles) on a 20,000-id sweep and a depth-1 crawl.
CHAOS_REAL_ARGS ?= --profile real --users 20000 --depth 1 --max-users 2000 \
	--timeline-tracks 0 --kill-every 6 --bot-burst 300
chaos: install
	$(PY) -m benchmarks.chaos
	$(PY) -m benchmarks.chaos $(CHAOS_REAL_ARGS)

chaos-real: install
	$(PY) -m benchmarks.chaos $(CHAOS_REAL_ARGS)

# Memory and connection growth of a fleet crawling for SOAK_MINUTES.
SOAK_MINUTES ?= 10
soak: install
	$(PY) -m benchmarks.soak --minutes $(SOAK_MINUTES)
