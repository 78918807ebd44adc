"""MemoryQueue: the embedded broker batches, retries, dead-letters, drains — and loses nothing."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from uuid import UUID

import pytest

from adapters.outbound.memory_queue import MemoryQueue
from application.deduplicate_event import DeduplicateEvent
from domain.errors import BackendUnavailableError
from domain.event import Event
from tests.builders import a_copy_of, an_event
from tests.fakes import FakeEventRepository, FakeHashCache

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


def by_id(event: Event) -> UUID:
    return event.event_id


def wait_until(condition: Callable[[], bool], *, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


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


def test_every_event_put_is_handed_over_once_in_order_in_bounded_batches(started: Start) -> None:
    handler = Recorder()
    queue = started(handler, max_batch=100, max_wait_seconds=0.05)
    events = [an_event() for _ in range(1050)]
    for start in range(0, len(events), 7):
        put(queue, events[start : start + 7])
    assert queue.drain(5)
    assert handler.events == events
    assert all(len(batch) <= 100 for batch in handler.batches)


def test_a_burst_is_gathered_into_full_batches(started: Start) -> None:
    handler = Recorder()
    queue = MemoryQueue(handler, max_batch=250, max_wait_seconds=0.05)
    put(queue, [an_event() for _ in range(1000)])  # buffered before the thread starts
    queue.start()
    try:
        assert queue.drain(5)
        assert [len(batch) for batch in handler.batches] == [250, 250, 250, 250]
    finally:
        queue.stop(timeout=2)


def test_a_lone_event_waits_no_longer_than_max_wait(started: Start) -> None:
    handler = Recorder()
    queue = started(handler, max_batch=5000, max_wait_seconds=0.05)
    began = time.monotonic()
    put(queue, [an_event()])
    assert queue.drain(5)
    assert time.monotonic() - began < 1.0
    assert len(handler.events) == 1


def test_put_returns_while_the_handler_is_busy(started: Start) -> None:
    release = threading.Event()
    handled: list[Event] = []

    def slow(batch: Sequence[Event]) -> None:
        release.wait(5)
        handled.extend(batch)

    queue = started(slow, max_wait_seconds=0)
    put(queue, [an_event()])
    began = time.monotonic()
    for _ in range(100):
        put(queue, [an_event()])
    assert time.monotonic() - began < 0.5
    release.set()
    assert queue.drain(5)
    assert len(handled) == 101


def test_an_unavailable_backend_gets_the_same_batch_again(started: Start) -> None:
    handler = Recorder(failures=2)
    queue = started(handler, retry_delays=FAST_RETRIES, max_wait_seconds=0.01)
    events = [an_event() for _ in range(5)]
    put(queue, events)
    assert queue.drain(5)
    assert handler.calls == 3
    assert handler.batches == [events]
    assert queue.dead_letters == []


def test_a_batch_that_exhausts_its_retries_is_dead_lettered_then_replayed(started: Start) -> None:
    handler = Recorder(failures=4)  # one try and three retries, all failing
    queue = started(handler, retry_delays=FAST_RETRIES, max_wait_seconds=0.01)
    events = [an_event() for _ in range(5)]
    put(queue, events)
    assert queue.drain(5)
    assert handler.batches == []
    assert queue.dead_letters == [tuple(events)]

    assert queue.replay_dead() == 5
    assert queue.drain(5)
    assert handler.batches == [events]
    assert queue.dead_letters == []


def test_an_unexpected_error_dead_letters_the_batch_without_retrying(started: Start) -> None:
    handler = Recorder(failures=1, error=RuntimeError("bug"))
    queue = started(handler, retry_delays=FAST_RETRIES, max_wait_seconds=0.01)
    events = [an_event() for _ in range(3)]
    put(queue, events)
    assert queue.drain(5)
    assert handler.calls == 1
    assert queue.dead_letters == [tuple(events)]


def test_stop_delivers_what_is_queued_then_refuses_new_events() -> None:
    handler = Recorder()
    queue = MemoryQueue(handler, max_wait_seconds=10)  # only stop() can cut this wait short
    queue.start()
    events = [an_event() for _ in range(10)]
    put(queue, events)
    assert queue.stop(timeout=5)
    assert handler.events == events
    with pytest.raises(BackendUnavailableError) as raised:
        put(queue, [an_event()])
    assert raised.value.backend == "broker"


def test_a_stop_that_times_out_dead_letters_instead_of_dropping() -> None:
    handler = Recorder(failures=10**6)
    queue = MemoryQueue(handler, max_batch=2, max_wait_seconds=0, retry_delays=(30,))
    queue.start()
    events = [an_event() for _ in range(6)]
    put(queue, events)
    assert not queue.stop(timeout=0.2)
    buried = [event for batch in queue.dead_letters for event in batch]
    assert sorted(buried, key=by_id) == sorted(events, key=by_id)


def test_a_queue_never_started_keeps_its_events_as_dead_letters_on_stop() -> None:
    queue = MemoryQueue(Recorder())
    events = [an_event() for _ in range(3)]
    put(queue, events)
    assert not queue.stop(timeout=1)
    assert queue.dead_letters == [tuple(events)]


def test_a_full_queue_refuses_events_rather_than_growing_without_bound() -> None:
    queue = MemoryQueue(Recorder(), max_pending=5)  # not started, so nothing drains
    put(queue, [an_event() for _ in range(5)])
    with pytest.raises(BackendUnavailableError):
        put(queue, [an_event()])
    queue.stop(timeout=0)


def test_events_are_stored_once_even_when_the_repository_is_down_for_a_while(
    started: Start,
) -> None:
    cache, repo = FakeHashCache(), FakeEventRepository(down=True)
    deduplicate = DeduplicateEvent(cache=cache, events=repo)
    failures: list[BackendUnavailableError] = []

    def handler(batch: Sequence[Event]) -> None:
        try:
            deduplicate.execute(batch)
        except BackendUnavailableError as exc:
            failures.append(exc)
            raise

    queue = started(handler, max_wait_seconds=0.01, retry_delays=(0.05,) * 100)
    originals = [an_event() for _ in range(20)]
    copies = [a_copy_of(event) for event in originals[:5]]
    put(queue, originals)
    put(queue, copies)
    put(queue, originals[:3])  # the broker delivered these again
    wait_until(lambda: len(failures) >= 2)
    repo.down = False
    assert queue.drain(10)

    assert sorted(repo.stored, key=by_id) == sorted(originals, key=by_id)
    assert sorted(dup.event_id for dup in repo.duplicates) == sorted(c.event_id for c in copies)
    assert queue.dead_letters == []
