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
from dedup.domain.errors import BackendUnavailableError, PoisonEventError
from dedup.domain.event import Event

from tests.builders import a_copy_of, an_event
from tests.fakes import FakeEventRepository, FakeHashCache, FakeStoredFilter
from tests.waiting import wait_until

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
    entered, release = threading.Event(), threading.Event()
    happened: list[object] = []

    def slow(batch: Sequence[Event]) -> None:
        entered.set()
        release.wait(5)
        happened.append("handled")

    queue = started(slow, max_wait_seconds=0)
    events = [an_event(), an_event()]
    thread, outcome = in_background(queue.put(events))
    assert entered.wait(5)
    assert outcome == []
    assert queue.depth() == {"events": 2}  # in the handler's hands, not answered

    release.set()
    thread.join(5)
    assert happened + outcome == ["handled", "ok"]
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


def test_a_lone_put_is_handed_over_once_max_wait_has_passed(started: Start) -> None:
    handler = Recorder()
    queue = started(handler, max_wait_seconds=0.05)
    began = time.monotonic()
    put(queue, [an_event()])
    assert time.monotonic() - began >= 0.05  # waited for company, then went alone
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


class Refusing:
    """A handler whose store refuses some events, naming them or not; stores the others."""

    def __init__(self, refused: set[UUID], *, name_them: bool = True) -> None:
        self.refused = refused
        self.name_them = name_them
        self.stored: list[Event] = []
        self.calls = 0

    def __call__(self, batch: Sequence[Event]) -> None:
        self.calls += 1
        poison = {event.event_id for event in batch} & self.refused
        if poison:
            raise PoisonEventError("refused", event_ids=poison if self.name_them else ())
        self.stored.extend(batch)


@pytest.mark.parametrize("name_them", [True, False], ids=["named", "found apart"])
def test_a_poison_event_fails_only_the_put_holding_it_and_the_others_are_stored(
    started: Start, name_them: bool
) -> None:
    chunks = [[an_event() for _ in range(2)] for _ in range(4)]
    handler = Refusing({chunks[2][1].event_id}, name_them=name_them)
    queue = started(handler, retry_delays=FAST_RETRIES, max_wait_seconds=0.05)

    raised = put_all(queue, chunks)

    assert isinstance(raised[2], PoisonEventError)  # a 422: retrying cannot help
    assert raised[:2] + raised[3:] == [None] * 3
    assert sorted(handler.stored, key=by_id) == sorted(
        (event for chunk in chunks[:2] + chunks[3:] for event in chunk), key=by_id
    )
    assert queue.depth() == {"events": 0}


def test_a_bug_in_the_handler_reaches_the_put_as_itself_without_retrying(started: Start) -> None:
    handler = Recorder(failures=1, error=RuntimeError("bug"))
    queue = started(handler, retry_delays=FAST_RETRIES, max_wait_seconds=0.01)

    with pytest.raises(RuntimeError, match="bug"):  # a 500 with its traceback, not a 503
        put(queue, [an_event()])

    assert handler.calls == 1


def test_a_bug_fails_only_the_puts_that_fail_alone_and_the_others_are_stored(
    started: Start,
) -> None:
    chunks = [[an_event()] for _ in range(5)]
    trips = chunks[1][0]
    stored: list[Event] = []

    def buggy(batch: Sequence[Event]) -> None:
        if trips in batch:
            raise KeyError("a bug")
        stored.extend(batch)

    queue = started(buggy, retry_delays=FAST_RETRIES, max_wait_seconds=0.05)

    raised = put_all(queue, chunks)

    assert isinstance(raised[1], KeyError)
    assert raised[:1] + raised[2:] == [None] * 4
    assert sorted(stored, key=by_id) == sorted(
        (chunk[0] for i, chunk in enumerate(chunks) if i != 1), key=by_id
    )


def test_the_store_refusing_an_event_fails_only_its_put_through_deduplication(
    started: Start,
) -> None:
    cache, repo = FakeHashCache(), FakeEventRepository()
    deduplicate = DeduplicateEvent(cache=cache, events=repo, seen=FakeStoredFilter())
    queue = started(deduplicate.execute, max_wait_seconds=0.05)
    poison, fine = an_event({"refused": True}), [an_event() for _ in range(3)]
    repo.refuses = {poison.content}

    raised = put_all(queue, [[fine[0], poison], [fine[1]], [fine[2]]])

    assert isinstance(raised[0], PoisonEventError)
    assert poison.event_id in raised[0].event_ids
    assert raised[1:] == [None, None]
    assert sorted(repo.stored, key=by_id) == sorted(fine[1:], key=by_id)


def test_stop_finishes_the_pending_puts_then_refuses_new_ones() -> None:
    handler = Recorder()
    queue = MemoryQueue(handler, max_wait_seconds=10)  # only stop() can cut this wait short
    queue.start()
    events = [an_event() for _ in range(10)]
    thread, outcome = in_background(queue.put(events))
    wait_until(lambda: queue.depth()["events"] == 10, timeout=5, interval=0.001, what="10 put")
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
    wait_until(lambda: queue.depth()["events"] == 1, timeout=5, interval=0.001, what="1 put")

    assert not queue.stop(timeout=1)
    thread.join(5)

    assert len(outcome) == 1 and isinstance(outcome[0], BackendUnavailableError)
    assert handler.calls == 0


def test_a_full_queue_refuses_a_put_at_once(started: Start) -> None:
    entered, release = threading.Event(), threading.Event()

    def blocked(batch: Sequence[Event]) -> None:
        entered.set()
        release.wait(5)

    queue = started(blocked, max_pending=5, max_wait_seconds=0)
    thread, outcome = in_background(queue.put([an_event() for _ in range(5)]))
    assert entered.wait(5)

    # Refused for being full, not after waiting for the handler (which would be a timeout).
    with pytest.raises(BackendUnavailableError, match="full"):
        put(queue, [an_event()])

    release.set()
    thread.join(5)
    assert outcome == ["ok"]


def test_a_put_whose_handler_never_finishes_times_out(started: Start) -> None:
    release = threading.Event()
    handled: list[Event] = []

    def stuck_until_released(batch: Sequence[Event]) -> None:
        release.wait(10)
        handled.extend(batch)

    queue = started(stuck_until_released, max_wait_seconds=0, timeout_seconds=0.1)
    late = an_event()

    with pytest.raises(BackendUnavailableError, match=r"not stored within 0\.1s") as raised:
        put(queue, [late])

    assert raised.value.backend == "broker"
    release.set()  # the late answer goes to a put that is gone: nothing breaks
    assert queue.drain(5)
    after = an_event()
    put(queue, [after])
    assert handled == [late, after]  # stored late (its client's retry is then a duplicate)


def test_ping_answers_only_while_running() -> None:
    queue = MemoryQueue(Recorder())
    with pytest.raises(BackendUnavailableError):
        queue.ping()
    queue.start()
    queue.ping()
    assert queue.depth() == {"events": 0}
    assert queue.stop(timeout=2)
    with pytest.raises(BackendUnavailableError):
        queue.ping()
    with pytest.raises(BackendUnavailableError):
        queue.depth()  # the live page reads the broker's state from it, not from ping()


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

    async def main() -> None:
        refused_enough = asyncio.Event()

        async def client(chunk: Sequence[Event]) -> None:
            while True:  # as an HTTP client retries a 503
                try:
                    return await queue.put(chunk)
                except BackendUnavailableError as exc:
                    refusals.append(exc)
                    if len(refusals) >= 4:
                        refused_enough.set()
                    await asyncio.sleep(0.01)  # the client's back-off, not a synchronisation

        async def outage() -> None:
            await refused_enough.wait()
            repo.down = False

        await asyncio.gather(outage(), *(client(chunk) for chunk in chunks))

    asyncio.run(asyncio.wait_for(main(), 10))

    assert sorted(repo.stored, key=by_id) == sorted(originals, key=by_id)
    assert sorted(dup.event_id for dup in repo.duplicates) == sorted(c.event_id for c in copies)
