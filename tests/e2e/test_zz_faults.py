"""Faults that stop SHARED servers — ClickHouse for 30 s, the RabbitMQ app — under load.

Named to run last: while one of these runs, every other test on this machine that talks to
ClickHouse or RabbitMQ fails. Each brings the server back in a finally block, then checks that
the same worker reconnected and that the accounting invariant holds exactly.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.faults import (
    clickhouse_pid,
    settle,
    start_broker,
    start_clickhouse,
    stop_broker,
    stop_clickhouse,
    wait_stored,
)
from tests.e2e.load import Load

pytestmark = [pytest.mark.e2e, pytest.mark.local_servers, pytest.mark.timeout(300)]

OUTAGE_SECONDS = 30


def test_clickhouse_stopped_for_30s_under_load_loses_nothing_and_stores_nothing_twice(
    stack: Stack,
) -> None:
    # Spread over the outage: events keep arriving while ClickHouse is gone.
    # Long enough to outlast the outage by far, whatever the set-up before it took.
    load = Load(stack.base_url, events=40 * (OUTAGE_SECONDS + 45), rate=40).start()
    wait_stored(stack)
    worker = stack.workers[0]
    try:
        stop_clickhouse(clickhouse_pid())
        time.sleep(OUTAGE_SECONDS)
        assert not load.done  # the outage happened under load
    finally:
        start_clickhouse()

    # Retries back off up to 32 s by then: allow a couple of rounds to drain.
    tally = settle(stack, load, drain_timeout=150)
    assert worker.popen.poll() is None, "the worker did not survive the outage"
    assert stack.workers == [worker]
    print(f"\nclickhouse stopped {OUTAGE_SECONDS}s: {tally}")


def test_the_broker_restarting_under_load_loses_nothing_and_stores_nothing_twice(
    stack: Stack,
) -> None:
    load = Load(stack.base_url, events=1500, rate=100).start()
    wait_stored(stack)
    worker = stack.workers[0]
    try:
        stop_broker()
        time.sleep(5)  # the API answers 503 meanwhile; the load retries
    finally:
        start_broker()

    tally = settle(stack, load, drain_timeout=120)
    assert worker.popen.poll() is None, "the worker did not survive the broker restart"
    assert "Connected to amqp" in worker.output().split("ready.", 1)[1], "no reconnect logged"
    print(f"\nbroker restarted: {tally}\n" + f"answers: {dict(load.answers)}")
