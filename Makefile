# The two commands of the README: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
STACK_ENV := DEDUP_CLICKHOUSE_URL=clickhouse://default:@127.0.0.1:9000/dedup \
	DEDUP_REDIS_URL=redis://127.0.0.1:6379/0 \
	DEDUP_BROKER_URL=amqp://guest:guest@127.0.0.1:5672//

.PHONY: install run run-stack services cluster browser npm migrate test unit integration e2e lint format bench bench-lookup bench-publish clean

# mypy reads the package as build/typecheck/dedup (pyproject's [tool.mypy] says why).
install: $(STAMP)
	mkdir -p build/typecheck && ln -sfn ../../src build/typecheck/dedup

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

## run: the service on this machine, embedded (chDB + in-process queue), data under ./var
run: install
	$(BIN)/dedup serve

## run-stack: API + worker + beat on the real Redis, RabbitMQ and ClickHouse servers
run-stack: install services
	$(STACK_ENV) $(BIN)/dedup migrate up
	$(STACK_ENV) $(BIN)/honcho start -f Procfile

services:
	scripts/ensure-services.sh

## cluster: ZooKeeper for the tests' own ClickHouse cluster (pytest -m cluster starts it)
cluster:
	scripts/ensure-cluster.sh

## browser: Debian's chromium, for the browser tests (live page, click flow)
browser:
	scripts/ensure-chromium.sh

## npm: the JavaScript SDKs the SDK tests drive (tests/e2e/js, npm ci from package-lock.json)
npm:
	scripts/ensure-npm.sh

migrate: install
	$(BIN)/dedup migrate up

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install services cluster browser npm lint
	$(BIN)/pytest -q

unit: install
	$(BIN)/pytest -q tests/unit

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: install services
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-lookup: install services
	$(BIN)/python -m bench.lookup $(BENCH_ARGS)

bench-publish: install services
	$(BIN)/python -m bench.publish $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var build .pytest_cache .mypy_cache .ruff_cache
