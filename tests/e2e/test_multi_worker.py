"""Scale-out: several worker processes on one queue keep the exactly-once promise."""

from __future__ import annotations

import pytest

from tests.accounting import assert_accounting_invariant
from tests.e2e.conftest import StackFactory
from tests.e2e.load import Load

pytestmark = pytest.mark.e2e


def test_three_worker_processes_on_one_queue_store_each_event_once(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(workers=3, concurrency=16)
    assert stack.consumers() == 3

    load = Load(stack.base_url, events=600, rate=400, max_copies=3).start().join()
    stack.wait_drained(timeout=90)

    tally = assert_accounting_invariant(load.ok_ids, stack.accounting())
    assert tally.stored == 600
    assert tally.recorded == len(load.ok_ids) - 600
