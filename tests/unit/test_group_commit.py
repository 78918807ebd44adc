"""GroupCommitter: submits share a flush, several flushes in flight, bounded waits."""

from __future__ import annotations

import asyncio
import time

import pytest
from dedup.adapters.outbound.group_commit import GroupCommitter
from dedup.domain.errors import BackendUnavailableError


class Recorder:
    """An async flush that keeps every batch; it can be made to fail or to hold its batches."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.failing: set[int] = set()  # a batch holding one of these items fails
        self.gate: asyncio.Event | None = None  # when set up, flushes wait until it opens
        self.running = 0
        self.most_running = 0
        self.cancelled = 0

    async def __call__(self, batch: list[int]) -> None:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.failing.intersection(batch):
                raise ConnectionResetError("the broker went away")
            self.batches.append(batch)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1

    @property
    def flushed(self) -> list[int]:
        return [item for batch in self.batches for item in batch]


def committer(flush: Recorder, **options: float) -> GroupCommitter[int]:
    defaults: dict[str, float] = {
        "max_items": 100,
        "max_wait_seconds": 0.005,
        "timeout_seconds": 2.0,
    }
    return GroupCommitter(flush, backend="broker", **(defaults | options))  # type: ignore[arg-type]


def test_concurrent_submits_share_one_flush() -> None:
    flush = Recorder()
    group = committer(flush)

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
        await asyncio.sleep(0.05)
        # Four submissions (12 items) are pending when the fourth arrives: three go, one waits.
        assert [len(batch) for batch in flush.batches] == [9, 9, 9, 9, 9, 9]
        await group.aclose()  # flushes the last two at once
        await submits

    asyncio.run(main())

    assert flush.batches[0] == [item for items in submissions[:3] for item in items]
    assert len(flush.batches[-1]) == 6
    assert sorted(flush.flushed) == sorted(item for items in submissions for item in items)


def test_a_lone_submit_is_flushed_after_max_wait() -> None:
    flush = Recorder()
    group = committer(flush, max_wait_seconds=0.05)

    async def main() -> float:
        started = time.monotonic()
        await group.submit([1])
        return time.monotonic() - started

    waited = asyncio.run(main())

    assert flush.batches == [[1]]
    assert 0.04 <= waited < 0.5


def test_a_failed_flush_fails_every_caller_of_its_batch_and_no_other() -> None:
    flush = Recorder()
    flush.failing = {13}
    group = committer(flush, max_items=10)

    async def main() -> list[BaseException | None]:
        outcomes = await asyncio.gather(
            *(group.submit([n]) for n in range(20)), return_exceptions=True
        )
        return list(outcomes)

    outcomes = asyncio.run(main())

    failed = [n for n, outcome in enumerate(outcomes) if outcome is not None]
    assert failed == list(range(10, 20))  # the batch holding 13, whole
    for n in failed:
        error = outcomes[n]
        assert isinstance(error, BackendUnavailableError)
        assert error.backend == "broker"
        assert isinstance(error.__cause__, ConnectionResetError)
    assert flush.flushed == list(range(10))
    assert (group.stats.batches, group.stats.failures) == (2, 1)


def test_a_flush_that_hangs_fails_its_callers_within_the_timeout_and_is_cancelled() -> None:
    flush = Recorder()
    group = committer(flush, timeout_seconds=0.2)

    async def main() -> None:
        flush.gate = asyncio.Event()  # never opened
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError, match="broker"):
            await asyncio.gather(group.submit([1]), group.submit([2]))
        assert time.monotonic() - started < 0.5
        await asyncio.sleep(0.01)
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
        await asyncio.sleep(0.05)
        assert flush.running == 3  # three in flight, four waiting for a slot
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
        await asyncio.sleep(0.02)
        flush.gate = None  # later flushes go through; the first still waits on its gate
        await asyncio.wait_for(group.submit([2]), timeout=0.5)
        assert not first.done()
        first.cancel()

    asyncio.run(main())

    assert flush.batches == [[2]]


def test_close_flushes_what_is_pending_and_refuses_later_submits() -> None:
    flush = Recorder()
    group = committer(flush, max_wait_seconds=60)

    async def main() -> None:
        waiting = asyncio.ensure_future(group.submit([1, 2]))
        await asyncio.sleep(0)
        await group.aclose()
        await waiting
        with pytest.raises(BackendUnavailableError, match="closed"):
            await group.submit([3])

    asyncio.run(main())

    assert flush.batches == [[1, 2]]
