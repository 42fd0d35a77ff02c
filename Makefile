# The two commands of the README: `make run` and `make test`. Everything else is a step of those.
# scripts/uv finds uv, or installs it into a venv of its own (a stock Debian or Ubuntu Python refuses pip).
UV := scripts/uv
HUB := $(UV) run --frozen hub

.PHONY: run test install kafka-up kafka-down lint schemas templates-check bench clean

install:  ## Python deps, pinned by uv.lock, in .venv (the `hub` command: .venv/bin/hub)
	$(UV) sync --frozen --all-extras

kafka-up: install  ## a local single-node Kafka (KRaft) from the Apache jars on Maven Central
	scripts/system-deps.sh run
	$(HUB) kafka up

kafka-down:
	$(HUB) kafka down

run: kafka-up  ## the hub, every role, SQLite store and outbox files under var/
	$(HUB) run

test: install  ## every test; integration tests start their own real broker (and PostgreSQL, Chromium)
	scripts/system-deps.sh test
	$(UV) run --frozen pytest -n 2 --dist loadgroup  # two workers (pytest-xdist), each with its own broker

lint: install  ## ruff, the layers contract of hub/ (import-linter), and the types (mypy)
	$(UV) run --frozen ruff check .
	$(UV) run --frozen lint-imports
	$(UV) run --frozen mypy

schemas: install
	$(HUB) schemas export

templates-check: install
	$(HUB) templates check

bench: install  ## the benchmark (under 15 minutes): the hub beside a lean reference, a 100k fan-out -> docs/BENCHMARKS.md
	$(UV) run --frozen python -m bench.run

clean:
	rm -rf var .kafka .kafka-test
