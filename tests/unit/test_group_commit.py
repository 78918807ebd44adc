"""GroupCommitter: many callers, one flush per batch, and an answer for each in bounded time."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from adapters.outbound.group_commit import GroupCommitter
from domain.errors import BackendUnavailableError


class Recorder:
    """A flush function that keeps every batch, and can be made to fail or to hang."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.failing = False
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, batch: list[int]) -> None:
        self.gate.wait()
        if self.failing:
            raise ConnectionRefusedError("nobody listens")
        self.batches.append(batch)

    @property
    def flushed(self) -> list[int]:
        return [item for batch in self.batches for item in batch]


@pytest.fixture
def flush() -> Recorder:
    return Recorder()


@pytest.fixture
def committer(flush: Recorder) -> Iterator[GroupCommitter[int]]:
    committer = GroupCommitter(
        flush, backend="broker", max_items=100, max_wait_seconds=0.005, timeout_seconds=2.0
    )
    yield committer
    flush.gate.set()
    committer.close(timeout=5)


def test_concurrent_submissions_are_flushed_together_in_few_batches(committer, flush) -> None:
    async def main() -> None:
        await asyncio.gather(*(committer.submit([n]) for n in range(50)))

    asyncio.run(main())

    assert sorted(flush.flushed) == list(range(50))
    assert len(flush.batches) <= 3
    assert committer.stats.batches == len(flush.batches)
    assert committer.stats.items == 50


def test_a_submit_returns_only_once_its_items_were_flushed(committer, flush) -> None:
    async def main() -> None:
        for n in range(5):
            await committer.submit([n, n + 100])
            assert {n, n + 100} <= set(flush.flushed)

    asyncio.run(main())


def test_a_batch_holds_whole_submissions_and_at_most_max_items(committer, flush) -> None:
    submissions = [[0], *(list(range(n * 30, n * 30 + 30)) for n in range(1, 8))]
    huge = list(range(1000, 1250))
    flush.gate.clear()  # let submissions pile up behind a slow flush

    async def main() -> None:
        first = asyncio.ensure_future(committer.submit(submissions[0]))
        await asyncio.sleep(0.05)
        waiting = asyncio.gather(
            first, *(committer.submit(items) for items in [*submissions[1:], huge])
        )
        await asyncio.sleep(0.05)
        flush.gate.set()
        await waiting

    asyncio.run(main())

    for items in [*submissions, huge]:
        assert any(set(items) <= set(batch) for batch in flush.batches)
    for batch in flush.batches:
        assert len(batch) <= 100 or batch == huge


def test_when_the_flush_fails_every_caller_of_that_batch_hears_it(committer, flush) -> None:
    flush.failing = True

    async def main() -> list[object]:
        return await asyncio.gather(
            *(committer.submit([n]) for n in range(10)), return_exceptions=True
        )

    results = asyncio.run(main())

    assert all(isinstance(r, BackendUnavailableError) for r in results)
    assert all(r.backend == "broker" for r in results)  # type: ignore[union-attr]
    assert isinstance(results[0].__cause__, ConnectionRefusedError)  # type: ignore[union-attr]
    assert committer.stats.failures >= 1


def test_a_failure_does_not_stop_later_batches(committer, flush) -> None:
    flush.failing = True
    with pytest.raises(BackendUnavailableError):
        asyncio.run(committer.submit([1]))

    flush.failing = False
    asyncio.run(committer.submit([2]))

    assert flush.flushed == [2]


def test_a_hanging_flush_turns_into_an_error_within_the_timeout(flush) -> None:
    committer = GroupCommitter(flush, backend="broker", timeout_seconds=0.2)
    flush.gate.clear()
    started = time.monotonic()

    with pytest.raises(BackendUnavailableError, match="not confirmed"):
        asyncio.run(committer.submit([1]))

    assert time.monotonic() - started < 1.0
    flush.gate.set()
    committer.close(timeout=5)


def test_items_whose_caller_gave_up_before_the_flush_are_not_flushed(flush) -> None:
    committer = GroupCommitter(flush, backend="broker", timeout_seconds=0.1)
    flush.gate.clear()

    async def main() -> None:
        first = asyncio.ensure_future(committer.submit([1]))  # taken, then stuck in flush
        await asyncio.sleep(0.02)
        with pytest.raises(BackendUnavailableError):
            await committer.submit([2])  # gives up while still pending
        flush.gate.set()
        with pytest.raises(BackendUnavailableError):
            await first

    asyncio.run(main())
    committer.close(timeout=5)

    assert flush.flushed == [1]


def test_callers_on_several_event_loops_each_get_their_answer(committer, flush) -> None:
    errors: list[BaseException] = []

    def client(base: int) -> None:
        async def main() -> None:
            await asyncio.gather(*(committer.submit([base + n]) for n in range(20)))

        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(base * 100,)) for base in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert errors == []
    assert sorted(flush.flushed) == sorted(b * 100 + n for b in range(4) for n in range(20))


def test_close_flushes_what_is_pending_and_refuses_what_comes_later(flush) -> None:
    committer = GroupCommitter(flush, backend="broker", max_wait_seconds=0.2)

    async def main() -> None:
        pending = asyncio.ensure_future(committer.submit([1, 2]))
        await asyncio.sleep(0.01)
        await asyncio.to_thread(committer.close, 5)
        await pending
        with pytest.raises(BackendUnavailableError, match="closed"):
            await committer.submit([3])

    asyncio.run(main())

    assert flush.flushed == [1, 2]
