# Ludus: the two commands are `make run` and `make test`.
.PHONY: run test setup services acceptance-deps acceptance bench-transport bench-load bench-api build check unit js fuzz-smoke fuzz bench generated fmt lint clean

CARGO ?= cargo
FUZZ_SECONDS ?= 20
# Recipes fail when any command of a pipeline fails (the tee'd test runs).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# Every test runner's output, for the closing totals line.
TEST_LOG := target/test-output.log

## run: build and start `ludus serve` on its embedded defaults
run:
	$(CARGO) run --release --bin ludus -- serve

## test: install what is missing, start services, run every test
test: setup services acceptance-deps check unit js fuzz-smoke
	@echo "make test: all checks passed"
	@bash scripts/test-summary.sh $(TEST_LOG)

setup:
	@bash scripts/setup.sh

services:
	@bash scripts/services.sh

## acceptance-deps: Chromium, the aioquic + schemathesis venv and playwright-core for
## tests/acceptance.rs and tests/api_schema.rs
acceptance-deps:
	@bash scripts/acceptance-deps.sh

## acceptance: only the end-to-end tests, printing what each proved (RTTs included)
acceptance: acceptance-deps
	$(CARGO) test --test acceptance -- --nocapture

build:
	$(CARGO) build --release --bin ludus

## check: formatting and lints, warnings are errors
check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --quiet -- -D warnings

## unit: Rust unit, integration and property tests; benches run once as tests
unit:
	@mkdir -p target
	$(CARGO) test --all-targets 2>&1 | tee $(TEST_LOG)
	$(CARGO) test --doc 2>&1 | tee -a $(TEST_LOG)

## js: the JavaScript codec against the shared vectors, the client game logic
js:
	@mkdir -p target
	node --test web/proto/ web/client/ web/game/ 2>&1 | tee -a $(TEST_LOG)

## fuzz-smoke: each fuzz target for FUZZ_SECONDS (needs nightly + cargo-fuzz)
fuzz-smoke:
	LUDUS_FUZZ_OPTIONAL=1 bash scripts/fuzz.sh $(FUZZ_SECONDS)

## fuzz: longer fuzzing, 10 minutes per target
fuzz:
	bash scripts/fuzz.sh 600

## bench: criterion benchmarks of every hot path (codec, simulation, reactor
## echo, tokens and passwords, the event log, match history on JetStream and
## Postgres), then the capacity scenarios (server and bots as
## separate processes, pinned to different cores) and the REST API under wrk;
## reports under target/criterion and target/bench
bench: build
	$(CARGO) bench --bench wire --bench sim_tetris --bench sim_arena --bench reactor_echo --bench auth --bench event_log --bench history
	python3 scripts/bench-load.py --out target/bench
	python3 scripts/bench-api.py --out target/bench

## bench-api: only the REST API scenarios (needs wrk)
bench-api: build
	python3 scripts/bench-api.py --out target/bench

## bench-load: only the capacity scenarios (GAMES=arena,tetris STEPS=500,1000,...)
bench-load: build
	python3 scripts/bench-load.py --out target/bench $(if $(GAMES),--games $(GAMES)) $(if $(STEPS),--steps $(STEPS))

## bench-transport: echo load against `ludus serve` and a wtransport peer (release build)
bench-transport:
	bash scripts/bench-transport.sh

## generated: rewrite web/proto/schema.js, tests/vectors/ and the catalog in docs/PROTOCOL.md
generated:
	LUDUS_BLESS=1 $(CARGO) test --test wire_generated

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
