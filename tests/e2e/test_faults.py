"""Faults that touch only the test's own processes: a worker killed, its Redis flushed or restarted.

Each runs under load (copies of every event sent concurrently), and afterwards the accounting
invariant holds exactly: zero duplicates stored, zero events lost. The faults that stop shared
servers (ClickHouse, RabbitMQ) are in test_zz_faults.py, which runs last.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import StackFactory
from tests.e2e.faults import flush_again_and_again, settle, wait_stored
from tests.e2e.load import Load
from tests.e2e.processes import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def test_a_worker_killed_mid_batch_loses_nothing_and_stores_nothing_twice(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(workers=2)
    load = Load(stack.base_url, events=1200, rate=100).start()
    wait_stored(stack)
    # Messages out unacked: the worker holds a batch (waiting to flush, or flushing).
    wait_until(lambda: stack.depth()[1] > 0, timeout=30, what="the worker to hold messages")
    stack.kill_worker(stack.workers[0])  # kill -9, mid-batch
    time.sleep(2)  # the load goes on into the queue meanwhile
    stack.start_worker()

    tally = settle(stack, load)
    print(f"\nworker killed: {tally}, raw rows in events: {stack.stored()}")


def test_redis_flushed_then_restarted_empty_under_load_changes_nothing_stored(
    make_stack: StackFactory,
) -> None:
    # Two workers, so two batches can be between claim and insert at the same moment: the
    # race a lost claim opens (DESIGN.md §3 step 4) needs them.
    stack = make_stack(workers=2)
    # Copies a little apart land in different messages, so different workers race for them.
    load = Load(stack.base_url, events=1200, rate=100, spread_seconds=0.3).start()
    wait_stored(stack)
    flush_again_and_again(stack.redis.flushall, seconds=8)
    stack.redis.restart(down_for=3)  # gone for a while, back empty
    workers = list(stack.workers)

    tally = settle(stack, load)
    assert all(worker.popen.poll() is None for worker in workers)  # rode it out by retrying
    # The stored filter, lost with everything else, was refilled from ClickHouse.
    wait_until(stack.redis.filters_complete, timeout=60, what="the stored filter refilled")
    print(f"\nredis flushed and restarted: {tally}, races settled: {stack.settled_races()}")


@pytest.mark.parametrize("kept", [False, True], ids=["stopped-back-empty", "paused-kept-its-data"])
def test_redis_down_under_load_storage_goes_on_through_clickhouse_exactly_once(
    make_stack: StackFactory, kept: bool
) -> None:
    stack = make_stack(workers=2)
    # 2,000 events at 100/s: the load runs through the outage and past Redis's return.
    load = Load(stack.base_url, events=2000, rate=100, spread_seconds=0.3).start()
    wait_stored(stack)
    wait_until(stack.redis.filters_complete, timeout=60, what="the stored filter in use")

    # Stopped: refused at once. Paused (SIGSTOP): every probe waits out a timeout, and the
    # server comes back with its claims and a filter that says complete but missed additions.
    stack.redis.pause() if kept else stack.redis.stop()
    down_at = stack.stored()
    # Rows keep being stored WHILE Redis is down, nothing waits for it or gives up on it.
    wait_until(
        lambda: stack.stored() >= down_at + 200, timeout=30, what="rows stored while redis is down"
    )
    assert stack.dead_letters() == 0, stack.logs()
    time.sleep(6)  # down for a while more, copies in flight all along
    stack.redis.resume() if kept else stack.redis.start()

    # Claims are written again, and the filters, lost or missing additions, are refilled.
    wait_until(lambda: stack.redis.keys() > 100, timeout=30, what="claims in redis again")
    tally = settle(stack, load)
    wait_until(stack.redis.filters_complete, timeout=60, what="the stored filter refilled")
    # One line when a worker found Redis away, one when it answered again: not one per batch.
    went = [w.output().count("degraded, storing through ClickHouse alone") for w in stack.workers]
    came = [w.output().count("redis answers again") for w in stack.workers]
    assert went == came, stack.logs()
    assert 1 <= sum(went) <= 2 * len(stack.workers), stack.logs()
    if kept:
        lost = "additions were lost while redis failed"
        assert any(lost in worker.output() for worker in stack.workers), stack.logs()
    print(f"\nredis down ({'paused' if kept else 'stopped'}) under load: {tally}")
