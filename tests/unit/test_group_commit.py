"""GroupCommitter: submits share a flush, several flushes in flight, bounded waits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from dedup.adapters.outbound.group_commit import GroupCommitter
from dedup.domain.errors import BackendUnavailableError, PoisonEventError


class Recorder:
    """An async flush that keeps every batch; it can be made to fail or to hold its batches."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.attempts: list[list[int]] = []  # every batch it was handed, failed ones too
        self.failing: set[int] = set()  # a batch holding one of these: the broker went away
        self.poison: set[int] = set()  # a batch holding one of these is refused, naming them
        self.buggy: set[int] = set()  # a batch holding one of these trips a bug
        self.gate: asyncio.Event | None = None  # when set up, flushes wait until it opens
        self.running = 0
        self.most_running = 0
        self.cancelled = 0
        self._step = asyncio.Event()  # set whenever a flush starts or ends

    async def __call__(self, batch: list[int]) -> None:
        self.attempts.append(batch)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        self._step.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.failing.intersection(batch):
                raise ConnectionResetError("the broker went away")
            if poison := self.poison.intersection(batch):
                raise PoisonEventError("refused", event_ids=poison)  # type: ignore[arg-type]
            if self.buggy.intersection(batch):
                raise KeyError("a bug")
            self.batches.append(batch)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1
            self._step.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait until the condition holds, looking again whenever a flush starts or ends."""
        while not condition():
            self._step.clear()
            await self._step.wait()

    @property
    def flushed(self) -> list[int]:
        return [item for batch in self.batches for item in batch]


def committer(flush: Recorder, **options: Any) -> GroupCommitter[int]:
    defaults: dict[str, Any] = {
        "max_items": 100,
        "max_wait_seconds": 0.005,
        "timeout_seconds": 2.0,
        "unavailable": (OSError,),  # what the Recorder's failing flush raises: a network error
    }
    return GroupCommitter(flush, backend="broker", **(defaults | options))


async def outcomes_of(group: GroupCommitter[int], submissions: list[list[int]]) -> list[object]:
    """Submit all at once; what each submit raised, or None."""
    return list(
        await asyncio.gather(
            *(group.submit(items) for items in submissions), return_exceptions=True
        )
    )


def test_concurrent_submits_share_one_flush() -> None:
    flush = Recorder()
    # Started by the size alone: a slow runner cannot make the wait split the batch.
    group = committer(flush, max_items=50, max_wait_seconds=60)

    async def main() -> None:
        await asyncio.gather(*(group.submit([n]) for n in range(50)))

    asyncio.run(main())

    assert flush.batches == [list(range(50))]
    assert (group.stats.batches, group.stats.items, group.stats.failures) == (1, 50, 0)


def test_a_submit_returns_only_once_its_items_were_flushed() -> None:
    flush = Recorder()
    group = committer(flush)

    async def main() -> None:
        for n in range(5):
            await group.submit([n, n + 100])
            assert {n, n + 100} <= set(flush.flushed)

    asyncio.run(main())


def test_max_items_pending_flush_at_once_in_whole_submissions() -> None:
    flush = Recorder()
    # A wait far beyond the test's: only the size can start these flushes.
    group = committer(flush, max_items=10, max_wait_seconds=60)
    submissions = [[n, n + 100, n + 200] for n in range(20)]

    async def main() -> None:
        submits = asyncio.gather(*(group.submit(items) for items in submissions))
        await flush.until(lambda: len(flush.batches) == 6 and flush.running == 0)
        # Four submissions (12 items) are pending when the fourth arrives: three go, one waits.
        assert [len(batch) for batch in flush.batches] == [9, 9, 9, 9, 9, 9]
        await group.aclose()  # flushes the last two at once
        await submits

    asyncio.run(main())

    assert flush.batches[0] == [item for items in submissions[:3] for item in items]
    assert len(flush.batches[-1]) == 6
    assert sorted(flush.flushed) == sorted(item for items in submissions for item in items)


def test_a_lone_submit_is_flushed_once_max_wait_has_passed() -> None:
    flush = Recorder()
    group = committer(flush, max_wait_seconds=0.05)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await group.submit([1])
        return loop.time() - started

    waited = asyncio.run(main())

    assert flush.batches == [[1]]  # nothing else came: the wait, not the size, started it
    assert waited >= 0.05


def test_a_broker_outage_fails_every_caller_of_its_batch_with_unavailable_and_no_other() -> None:
    flush = Recorder()
    flush.failing = {13}
    group = committer(flush, max_items=10)

    outcomes = asyncio.run(outcomes_of(group, [[n] for n in range(20)]))

    failed = [n for n, outcome in enumerate(outcomes) if outcome is not None]
    assert failed == list(range(10, 20))  # the batch holding 13, whole: retry is the client's
    for n in failed:
        error = outcomes[n]
        assert isinstance(error, BackendUnavailableError)
        assert error.backend == "broker"
        assert isinstance(error.__cause__, ConnectionResetError)
    assert len({id(outcomes[n]) for n in failed}) == 10  # each caller raises its own
    assert flush.flushed == list(range(10))
    assert (group.stats.batches, group.stats.failures) == (2, 1)


def test_a_poison_event_fails_only_the_submits_holding_it_and_the_rest_is_flushed_again() -> None:
    flush = Recorder()
    flush.poison = {13, 16}
    group = committer(flush, max_items=20, event_id=lambda n: n)

    outcomes = asyncio.run(outcomes_of(group, [[n, n + 100] for n in range(10, 20)]))

    poisoned = [n for n, outcome in zip(range(10, 20), outcomes, strict=True) if outcome]
    assert poisoned == [13, 16]
    assert all(isinstance(outcomes[n - 10], PoisonEventError) for n in poisoned)
    # Once with the poison, once without it: nobody else was failed or published alone.
    assert len(flush.attempts) == 2
    assert sorted(flush.flushed) == sorted(
        item for n in range(10, 20) if n not in poisoned for item in (n, n + 100)
    )


def test_a_poison_the_committer_cannot_place_is_found_by_flushing_the_submits_apart() -> None:
    flush = Recorder()
    flush.poison = {3}
    group = committer(flush, max_items=10)  # as CeleryQueue builds it: no event_id

    outcomes = asyncio.run(outcomes_of(group, [[n] for n in range(6)]))

    assert isinstance(outcomes[3], PoisonEventError)
    assert outcomes[:3] + outcomes[4:] == [None] * 5
    assert sorted(flush.flushed) == [0, 1, 2, 4, 5]


def test_a_bug_in_the_flush_reaches_as_itself_only_the_submits_that_fail_alone() -> None:
    flush = Recorder()
    flush.buggy = {4}
    group = committer(flush, max_items=10)

    outcomes = asyncio.run(outcomes_of(group, [[n] for n in range(8)]))

    assert isinstance(outcomes[4], KeyError)  # a 500 with its traceback, not a 503
    assert outcomes[:4] + outcomes[5:] == [None] * 7
    assert sorted(flush.flushed) == [0, 1, 2, 3, 5, 6, 7]


def test_a_driver_error_not_named_unavailable_is_a_bug_not_an_outage() -> None:
    flush = Recorder()
    flush.failing = {1}
    group = committer(flush, unavailable=(TimeoutError,))

    with pytest.raises(ConnectionResetError):
        asyncio.run(group.submit([1]))


def test_a_flush_that_hangs_fails_its_callers_at_the_timeout_and_is_cancelled() -> None:
    flush = Recorder()
    group = committer(flush, timeout_seconds=0.2)

    async def main() -> None:
        flush.gate = asyncio.Event()  # never opened
        with pytest.raises(BackendUnavailableError, match=r"not confirmed within 0\.2s"):
            await asyncio.gather(group.submit([1]), group.submit([2]))
        await group.aclose()  # returns once no flush runs any more
        # Its deadline is its oldest caller's: a publisher then knows its channel is in doubt.
        assert flush.cancelled == 1
        assert group.stats.failures == 1

    asyncio.run(main())

    assert flush.batches == []


def test_several_batches_await_their_flush_at_once_up_to_max_in_flight() -> None:
    flush = Recorder()
    group = committer(flush, max_items=1, max_in_flight=3)

    async def main() -> None:
        flush.gate = asyncio.Event()
        submits = asyncio.gather(*(group.submit([n]) for n in range(7)))
        await flush.until(lambda: flush.running == 3)  # three in flight, four waiting a slot
        flush.gate.set()
        await submits

    asyncio.run(main())

    assert sorted(flush.flushed) == list(range(7))
    assert flush.most_running == 3


def test_a_slow_flush_does_not_hold_back_the_next_batch() -> None:
    flush = Recorder()
    group = committer(flush, max_items=1)

    async def main() -> None:
        flush.gate = asyncio.Event()
        first = asyncio.ensure_future(group.submit([1]))
        await flush.until(lambda: flush.running == 1)
        flush.gate = None  # later flushes go through; the first still waits on its gate
        await group.submit([2])
        assert not first.done()
        first.cancel()

    asyncio.run(main())

    assert flush.batches == [[2]]


def test_close_flushes_what_is_pending_and_refuses_later_submits() -> None:
    flush = Recorder()
    group = committer(flush, max_wait_seconds=60)

    async def main() -> None:
        # Tasks start in order: the submit is pending (for a minute) when the close begins.
        await asyncio.gather(group.submit([1, 2]), group.aclose())
        with pytest.raises(BackendUnavailableError, match="closed"):
            await group.submit([3])

    asyncio.run(main())

    assert flush.batches == [[1, 2]]
