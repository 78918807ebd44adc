"""The worker's group commit, measured on real processes: few inserts, every event once."""

from __future__ import annotations

import time

import pytest

from tests.accounting import assert_accounting_invariant
from tests.e2e.conftest import Stack
from tests.e2e.load import Load

pytestmark = pytest.mark.e2e

INSERTS_PER_SECOND = 5  # per worker at full load: 1 / min_flush_interval (0.2 s)


def test_a_worker_under_load_stores_every_event_once_in_a_few_inserts_per_second(
    stack: Stack,
) -> None:
    load = Load(stack.base_url, events=1500, rate=150)
    began = time.monotonic()
    load.start().join()
    stack.wait_drained(timeout=60)
    elapsed = time.monotonic() - began

    ledger = stack.accounting()
    tally = assert_accounting_invariant(load.ok_ids, ledger)
    inserts = stack.inserts("events")
    print(
        f"\n{load.events} events, {load.copies_sent} copies in {elapsed:.1f}s:"
        f" {inserts} inserts into events ({inserts / elapsed:.1f}/s), {tally}"
    )
    assert len(ledger.events) == load.events
    assert stack.dead_letters() == 0
    # One flush at least every 0.2 s while busy; a few extra for the idle start and end.
    assert inserts <= INSERTS_PER_SECOND * elapsed + 3


def test_a_stopped_worker_finishes_its_batch_and_exits_cleanly(stack: Stack) -> None:
    load = Load(stack.base_url, events=300, rate=100).start()
    load.join()
    assert stack.workers[0].stop(timeout=60) == 0  # SIGTERM: Celery's warm shutdown
    stack.start_worker()
    stack.wait_drained(timeout=60)
    assert len(stack.accounting().events) == load.events
