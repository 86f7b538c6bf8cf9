# One Makefile for people, CI (.ci/run) and hooks. It bootstraps its own
# virtual environment, so a fresh clone with only Python 3.11+ needs nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo serve test lint typecheck fmt bench fuzz fuzz-hypothesis clean tools native

## tools: the real components tests start (OpenIntent server, Prometheus...), installed by scripts/install-tools.sh
tools: $(STAMP)
	bash scripts/install-tools.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## native: the optional native OTLP span encoder (native/, Rust), built into .venv when cargo is present;
## without it the sidecar uses the pure-Python encoder (the same bytes). `make tools` builds it too.
native: $(STAMP)
	bash scripts/build-native.sh

## demo: the sidecar with its embedded store and a synthetic agent (http://127.0.0.1:8318)
demo: $(STAMP)
	$(BIN)/otel-bridge demo

## serve: the sidecar alone
serve: $(STAMP)
	$(BIN)/otel-bridge serve

## test: lint, type check and the whole test suite (real collectors are started by the tests)
test: $(STAMP) tools
	$(BIN)/ruff check otel_bridge tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check otel_bridge tests bench
	$(BIN)/ruff format --check otel_bridge tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format otel_bridge tests bench
	$(BIN)/ruff check --fix otel_bridge tests bench

## bench: issue 9's table (figures go to BENCHMARKS.md): CPU per event against the SDK baseline through a real
## rotel collector (each row says whether its goal is met), the feed's fan-out (batched and one event a POST),
## memory per open span and the timeout sweep
bench: $(STAMP)
	$(BIN)/python bench/bench_pipeline.py --check --rounds 3
	$(BIN)/python bench/bench_fanout.py --rows 100x1000 --rounds 3
	$(BIN)/python bench/bench_fanout.py --rows 100x1000 --per-post 1
	$(BIN)/python bench/bench_fanout.py --rows 1000x1000 --only feed --time-every 10 --rounds 3
	$(BIN)/python bench/bench_fanout.py --rows 1000x1000 --only feed --time-every 10 --per-post 1
	$(BIN)/python -m bench.bench_open_spans
	$(BIN)/python -m bench.bench_sweep

## fuzz: the long ingest fuzz run (bench/fuzz_long.py): FUZZ_REQUESTS mutated requests (default 1,000,000)
## straight into the ASGI app; prints the rate, 5xx, dead tasks and RSS; exit 1 on any 5xx or dead task.
## Replay one request: .venv/bin/python bench/fuzz_long.py --seed S --only I --show
FUZZ_REQUESTS ?= 1000000
FUZZ_SEED ?= 1
fuzz: $(STAMP)
	$(BIN)/python bench/fuzz_long.py --requests $(FUZZ_REQUESTS) --seed $(FUZZ_SEED)

## fuzz-hypothesis: the CI property-based fuzzer with a bigger budget (FUZZ_EXAMPLES, default 20000); it shrinks what it finds
## (FUZZ_SMALL_BOUNDS=1: bounds of 100 runs/traces/feed events, so RSS past them shows unbounded growth)
FUZZ_EXAMPLES ?= 20000
FUZZ_SMALL_BOUNDS ?= 0
fuzz-hypothesis: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SMALL_BOUNDS=$(FUZZ_SMALL_BOUNDS) FUZZ_REPORT=1 $(BIN)/pytest -q -s -p no:cacheprovider -o timeout=0 tests/test_fuzz_ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info native/target
