# The two commands of the README: `make run` and `make test`. Everything else is a step of those.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
HUB := $(UV) run --frozen hub

.PHONY: run test install kafka-up kafka-down lint schemas templates-check bench clean

install:  ## Python deps, pinned by uv.lock (uv itself from PyPI when missing)
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv>=0.5"
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
	$(UV) run --frozen pytest

lint: install
	$(UV) run --frozen ruff check .

schemas: install
	$(HUB) schemas export

templates-check: install
	$(HUB) templates check

bench: install  ## the benchmark (about 10 minutes): raw aiokafka vs the hub, fan-out, memory -> docs/BENCHMARKS.md
	$(UV) run --frozen python -m bench.run

clean:
	rm -rf var .kafka .kafka-test
