"""MemoryQueue: put() answers only once the handler stored its events, gathering puts together."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any
from uuid import UUID

import pytest
from dedup.adapters.outbound.memory_queue import MemoryQueue
from dedup.application.deduplicate_event import DeduplicateEvent
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event

from tests.builders import a_copy_of, an_event
from tests.fakes import FakeEventRepository, FakeHashCache, FakeStoredFilter

FAST_RETRIES = (0.01, 0.01, 0.01)
Start = Callable[..., MemoryQueue]


class Recorder:
    """A handler that keeps each batch; it fails the first `failures` calls with `error`."""

    def __init__(self, *, failures: int = 0, error: Exception | None = None) -> None:
        self.batches: list[list[Event]] = []
        self.calls = 0
        self._failures = failures
        self._error = error or BackendUnavailableError("clickhouse")
        self._lock = threading.Lock()

    def __call__(self, batch: Sequence[Event]) -> None:
        with self._lock:
            self.calls += 1
            if self.calls <= self._failures:
                raise self._error
            self.batches.append(list(batch))

    @property
    def events(self) -> list[Event]:
        return [event for batch in self.batches for event in batch]


def put(queue: MemoryQueue, events: Sequence[Event]) -> None:
    asyncio.run(queue.put(events))


def put_all(queue: MemoryQueue, chunks: Sequence[Sequence[Event]]) -> list[BaseException | None]:
    """Put every chunk at once from one loop; what each put raised, or None."""

    async def main() -> list[BaseException | None]:
        return await asyncio.gather(*(queue.put(chunk) for chunk in chunks), return_exceptions=True)

    return asyncio.run(main())


def in_background(coroutine: Coroutine[Any, Any, None]) -> tuple[threading.Thread, list[object]]:
    """Run a coroutine on its own loop in a thread; the list gets its outcome ("ok" or error)."""
    outcome: list[object] = []

    def run() -> None:
        try:
            asyncio.run(coroutine)
            outcome.append("ok")
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def by_id(event: Event) -> UUID:
    return event.event_id


@pytest.fixture
def started() -> Iterator[Start]:
    queues: list[MemoryQueue] = []

    def start(handler: Callable[[Sequence[Event]], object], **kwargs: object) -> MemoryQueue:
        queue = MemoryQueue(handler, **kwargs)  # type: ignore[arg-type]
        queue.start()
        queues.append(queue)
        return queue

    yield start
    for queue in queues:
        queue.stop(timeout=2)


def test_concurrent_puts_are_gathered_into_one_handler_call(started: Start) -> None:
    handler = Recorder()
    queue = started(handler, max_wait_seconds=0.05)
    chunks = [[an_event() for _ in range(3)] for _ in range(20)]

    assert put_all(queue, chunks) == [None] * 20

    assert handler.calls == 1
    assert sorted(handler.events, key=by_id) == sorted(
        (event for chunk in chunks for event in chunk), key=by_id
    )


def test_put_returns_only_after_the_handler_has_run(started: Start) -> None:
    release = threading.Event()
    handled: list[Event] = []

    def slow(batch: Sequence[Event]) -> None:
        release.wait(5)
        handled.extend(batch)

    queue = started(slow, max_wait_seconds=0)
    events = [an_event(), an_event()]
    thread, outcome = in_background(queue.put(events))
    time.sleep(0.1)  # the put has had every chance to return early
    assert outcome == []
    assert queue.depth() == {"events": 2}

    release.set()
    thread.join(5)
    assert outcome == ["ok"]
    assert handled == events
    assert queue.depth() == {"events": 0}


def test_a_put_is_never_split_across_batches_and_each_batch_is_bounded(started: Start) -> None:
    handler = Recorder()
    queue = started(handler, max_batch=10, max_wait_seconds=0.05)
    small = [[an_event() for _ in range(4)] for _ in range(5)]
    large = [an_event() for _ in range(25)]  # larger than a batch: it goes alone, whole

    assert put_all(queue, [*small, large]) == [None] * 6

    for chunk in [*small, large]:
        holding = [batch for batch in handler.batches if chunk[0] in batch]
        assert len(holding) == 1 and all(event in holding[0] for event in chunk)
    assert sorted(len(batch) for batch in handler.batches) == [4, 8, 8, 25]


def test_a_lone_put_waits_no_longer_than_max_wait(started: Start) -> None:
    handler = Recorder()
    queue = started(handler, max_wait_seconds=0.05)
    began = time.monotonic()
    put(queue, [an_event()])
    assert time.monotonic() - began < 1.0
    assert len(handler.events) == 1


def test_a_batch_that_succeeds_on_a_retry_answers_its_puts_ok(started: Start) -> None:
    handler = Recorder(failures=2)
    queue = started(handler, retry_delays=FAST_RETRIES, max_wait_seconds=0.05)
    chunks = [[an_event() for _ in range(2)] for _ in range(3)]

    assert put_all(queue, chunks) == [None] * 3

    assert handler.calls == 3
    assert len(handler.batches) == 1
    assert sorted(handler.events, key=by_id) == sorted(
        (event for chunk in chunks for event in chunk), key=by_id
    )


def test_a_batch_that_exhausts_its_retries_fails_every_put_and_stores_nothing(
    started: Start,
) -> None:
    handler = Recorder(failures=4)  # one try and three retries, all failing
    queue = started(handler, retry_delays=FAST_RETRIES, max_wait_seconds=0.05)
    chunks = [[an_event() for _ in range(2)] for _ in range(3)]

    raised = put_all(queue, chunks)

    assert all(isinstance(exc, BackendUnavailableError) for exc in raised), raised
    assert {exc.backend for exc in raised if isinstance(exc, BackendUnavailableError)} == {"broker"}
    assert handler.calls == 4
    assert handler.batches == []
    assert queue.depth() == {"events": 0}  # nothing left behind to be stored later
    put(queue, chunks[0])  # the client's retry goes through once the backend is back
    assert handler.batches == [chunks[0]]


def test_an_unexpected_error_fails_the_puts_without_retrying(started: Start) -> None:
    handler = Recorder(failures=1, error=RuntimeError("bug"))
    queue = started(handler, retry_delays=FAST_RETRIES, max_wait_seconds=0.01)

    with pytest.raises(BackendUnavailableError) as raised:
        put(queue, [an_event()])

    assert raised.value.backend == "broker"
    assert handler.calls == 1


def test_stop_finishes_the_pending_puts_then_refuses_new_ones() -> None:
    handler = Recorder()
    queue = MemoryQueue(handler, max_wait_seconds=10)  # only stop() can cut this wait short
    queue.start()
    events = [an_event() for _ in range(10)]
    thread, outcome = in_background(queue.put(events))
    while queue.depth()["events"] < 10:
        time.sleep(0.005)
    assert queue.drain(0.1) is False  # the thread waits for more, as told

    assert queue.stop(timeout=5)
    thread.join(5)

    assert outcome == ["ok"]
    assert handler.events == events
    with pytest.raises(BackendUnavailableError) as raised:
        put(queue, [an_event()])
    assert raised.value.backend == "broker"
    with pytest.raises(BackendUnavailableError):
        queue.ping()


def test_stopping_a_queue_never_started_fails_its_pending_puts() -> None:
    handler = Recorder()
    queue = MemoryQueue(handler)
    thread, outcome = in_background(queue.put([an_event()]))
    while queue.depth()["events"] < 1:
        time.sleep(0.005)

    assert not queue.stop(timeout=1)
    thread.join(5)

    assert len(outcome) == 1 and isinstance(outcome[0], BackendUnavailableError)
    assert handler.calls == 0


def test_a_full_queue_refuses_a_put_at_once(started: Start) -> None:
    release = threading.Event()
    queue = started(lambda batch: release.wait(5), max_pending=5, max_wait_seconds=0)
    thread, outcome = in_background(queue.put([an_event() for _ in range(5)]))
    while queue.depth()["events"] < 5:
        time.sleep(0.005)

    began = time.monotonic()
    with pytest.raises(BackendUnavailableError):
        put(queue, [an_event()])
    assert time.monotonic() - began < 0.5

    release.set()
    thread.join(5)
    assert outcome == ["ok"]


def test_a_put_whose_handler_never_finishes_times_out(started: Start) -> None:
    release = threading.Event()
    queue = started(lambda batch: release.wait(10), max_wait_seconds=0, timeout_seconds=0.1)
    began = time.monotonic()

    with pytest.raises(BackendUnavailableError) as raised:
        put(queue, [an_event()])

    assert raised.value.backend == "broker"
    assert time.monotonic() - began < 2
    release.set()  # the late answer goes to a put that is gone: nothing breaks
    assert queue.drain(5)
    put(queue, [an_event()])


def test_ping_answers_only_while_running() -> None:
    queue = MemoryQueue(Recorder())
    with pytest.raises(BackendUnavailableError):
        queue.ping()
    queue.start()
    queue.ping()
    assert queue.stop(timeout=2)
    with pytest.raises(BackendUnavailableError):
        queue.ping()


def test_each_event_is_stored_once_when_clients_retry_through_a_repository_outage(
    started: Start,
) -> None:
    cache, repo = FakeHashCache(), FakeEventRepository(down=True)
    deduplicate = DeduplicateEvent(cache=cache, events=repo, seen=FakeStoredFilter())
    queue = started(deduplicate.execute, max_wait_seconds=0.01, retry_delays=(0.01,))
    originals = [an_event() for _ in range(20)]
    copies = [a_copy_of(event) for event in originals[:5]]
    chunks = [originals[:10], originals[10:], copies, originals[:3]]  # the last: sent again
    refusals: list[BackendUnavailableError] = []

    async def client(chunk: Sequence[Event]) -> None:
        while True:  # as an HTTP client retries a 503
            try:
                return await queue.put(chunk)
            except BackendUnavailableError as exc:
                refusals.append(exc)
                await asyncio.sleep(0.01)

    async def outage() -> None:
        while len(refusals) < 4:
            await asyncio.sleep(0.005)
        repo.down = False

    async def main() -> None:
        await asyncio.gather(outage(), *(client(chunk) for chunk in chunks))

    asyncio.run(asyncio.wait_for(main(), 10))

    assert sorted(repo.stored, key=by_id) == sorted(originals, key=by_id)
    assert sorted(dup.event_id for dup in repo.duplicates) == sorted(c.event_id for c in copies)
