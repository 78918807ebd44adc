"""Faults that stop SHARED servers — ClickHouse past the old retry budget, the RabbitMQ app.

Named to run last: while one of these runs, every other test on this machine that talks to
ClickHouse or RabbitMQ fails. Each brings the server back in a finally block, then checks that
the same worker reconnected and that the accounting invariant holds exactly.
"""

from __future__ import annotations

import os
import time

import httpx
import psutil
import pytest

from tests.e2e.conftest import Stack, StackFactory
from tests.e2e.faults import (
    clickhouse_pid,
    kill_broker,
    restart_killed_broker,
    settle,
    start_broker,
    start_clickhouse,
    stop_broker,
    stop_clickhouse,
    wait_stored,
)
from tests.e2e.load import Load

pytestmark = [pytest.mark.e2e, pytest.mark.local_servers, pytest.mark.timeout(300)]

# Longer than the old retry budget (8 retries, backoff capped at 60 s: 1.5 to 3 minutes).
# TEST_OUTAGE_SECONDS=600 measures the 10 minutes of DESIGN.md §8 (not in the suite's budget).
OUTAGE_SECONDS = int(os.environ.get("TEST_OUTAGE_SECONDS", "200"))
HOLD = "10s"  # DEDUP_RETRY_HOLD: messages are given back to the queue many times meanwhile
MIB = 1 << 20


@pytest.mark.timeout(OUTAGE_SECONDS + 400)
def test_clickhouse_stopped_past_the_old_retry_budget_dead_letters_nothing_and_loses_nothing(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(retry_hold=HOLD)
    # Spread over the outage: events keep arriving while ClickHouse is gone.
    load = Load(stack.base_url, events=20 * (OUTAGE_SECONDS + 40), rate=20).start()
    wait_stored(stack)
    worker = stack.workers[0]
    rss: list[int] = []
    try:
        stop_clickhouse(clickhouse_pid())
        ends = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < ends:
            rss.append(psutil.Process(worker.popen.pid).memory_info().rss)
            assert stack.dead_letters() == 0
            time.sleep(5)
        assert not load.done  # the outage happened under load
        ready = httpx.get(f"{stack.base_url}/health/ready", timeout=10)
        assert (ready.status_code, ready.json()["status"]) == (200, "degraded")
    finally:
        start_clickhouse()
    back = time.monotonic()

    load.join()
    stack.wait_drained(timeout=300)
    drained = time.monotonic() - back
    tally = settle(stack, load, drain_timeout=60)
    assert worker.popen.poll() is None, "the worker did not survive the outage"
    assert stack.workers == [worker]
    # Flat: the worker holds at most its prefetch of messages, however long the outage.
    settled = rss[len(rss) // 4 :]
    assert max(settled) - min(settled) < 64 * MIB, [r // MIB for r in rss]
    print(
        f"\nclickhouse stopped {OUTAGE_SECONDS}s under load: {tally}; ok'd {len(load.ok_ids)},"
        f" dead letters 0, worker RSS {min(rss) // MIB}-{max(rss) // MIB} MiB during the outage,"
        f" drained {drained:.1f}s after it returned"
    )


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


def test_the_broker_killed_under_load_loses_no_ok_and_stores_nothing_twice(stack: Stack) -> None:
    load = Load(stack.base_url, events=2000, rate=100).start()
    wait_stored(stack)
    worker = stack.workers[0]
    try:
        kill_broker()
        # While it is gone the API says so, and when to come back; the load retries.
        answer = httpx.post(f"{stack.base_url}/service-event/", json={"probe": 1}, timeout=30)
        assert answer.status_code == 503, answer.text
        assert int(answer.headers["retry-after"]) >= 1
        time.sleep(5)
    finally:
        restart_killed_broker()

    tally = settle(stack, load, drain_timeout=180)
    assert worker.popen.poll() is None, "the worker did not survive the broker's crash"
    assert stack.api.popen.poll() is None, "the API did not survive the broker's crash"
    print(f"\nbroker killed -9: {tally}\n" + f"answers: {dict(load.answers)}")
