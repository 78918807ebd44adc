"""API → RabbitMQ → Celery worker → DeduplicateEvent, with retries and dead letters, for real."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import pytest
from attrs import define
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.worker import state
from dedup.adapters.inbound.backend_breaker import BackendBreaker
from dedup.adapters.inbound.celery_tasks import TASK_NAME, register_tasks
from dedup.adapters.outbound.celery_queue import CeleryQueue
from dedup.adapters.outbound.dead_letters import CeleryDeadLetters
from dedup.adapters.outbound.no_stored_filter import NoStoredFilter
from dedup.application.deduplicate_event import DeduplicateEvent
from dedup.domain.errors import BackendUnavailableError, PoisonEventError
from dedup.domain.event import Event
from dedup.domain.outcome import Duplicate

from tests.builders import a_copy_of, an_event
from tests.fakes import FakeEventRepository, FakeHashCache
from tests.integration.test_celery_queue import drain
from tests.scrape import value

pytestmark = pytest.mark.integration

MAX_RETRIES = 2  # a bug's retries wait whole seconds (see backoff_seconds): keep them few
HOLD_SECONDS = 0.3  # a message waiting out an outage is given back this often


@define
class FlakyEventRepository(FakeEventRepository):
    """Down for its next `failures` saves, or until `down_until` (monotonic), then up."""

    failures: int = 0
    down_until: float = 0.0
    refused: int = 0

    def save(self, *, events: Sequence[Event], duplicates: Sequence[Duplicate]) -> None:
        if self.failures > 0 or time.monotonic() < self.down_until:
            self.failures -= 1
            self.refused += 1
            raise BackendUnavailableError("clickhouse")
        super().save(events=events, duplicates=duplicates)


@define
class BrokenDeduplicate:
    """A use case with a bug: every batch raises something that is not the backend's fault."""

    calls: int = 0

    def execute(self, batch: Sequence[Event]) -> None:
        self.calls += 1
        raise KeyError("a bug")


@define
class RefusingDeduplicate:
    """A use case whose store refuses every event it is given, naming them."""

    calls: int = 0

    def execute(self, batch: Sequence[Event]) -> None:
        self.calls += 1
        raise PoisonEventError("refused", event_ids=[event.event_id for event in batch])


@pytest.fixture
def app(app: Celery) -> Celery:
    app.conf.worker_enable_remote_control = False  # no pidbox queues for a test worker
    return app


@pytest.fixture
def repo() -> FlakyEventRepository:
    return FlakyEventRepository()


@pytest.fixture(params=[3600.0])
def worker(
    app: Celery, repo: FlakyEventRepository, request: pytest.FixtureRequest
) -> Iterator[None]:
    """A worker whose DEDUP_RETRY_FOR is the param (indirect parametrization changes it)."""
    cache = FakeHashCache()
    register_tasks(
        app,
        deduplicate=lambda: DeduplicateEvent(cache=cache, events=repo, seen=NoStoredFilter()),
        retry_for_seconds=request.param,
        hold_seconds=HOLD_SECONDS,
        breaker=BackendBreaker(base_seconds=0.01, cap_seconds=0.05),
        max_retries=MAX_RETRIES,
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.05,
    )
    with running_worker(app):
        yield


@contextmanager
def running_worker(app: Celery) -> Iterator[None]:
    """A one-thread worker in this process, so it shares the fakes with the test.

    Not the solo pool: there a reject issued while the task runs reaches the broker only at
    the worker loop's next wake-up (up to 10 s), which would slow every dead-letter test.
    """
    with start_worker(
        app, pool="threads", concurrency=1, perform_ping_check=False, shutdown_timeout=30
    ) as worker:
        yield
        # start_worker raises the stop flag, but an idle worker loop looks at it only after
        # its next timer (up to 10 s): raise it here and wake the loop.
        state.should_terminate = 0
        worker.hub.call_soon(lambda: None)


def wait_until(condition: Callable[[], bool], *, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        time.sleep(0.02)


def depth(app: Celery, name: str) -> int:
    with app.connection_for_write() as connection:
        channel = connection.channel()
        count = channel.queue_declare(name, passive=True).message_count
        channel.close()
        return int(count)


def dead_queue(app: Celery) -> str:
    arguments = app.amqp.queues[app.conf.task_default_queue].queue_arguments
    return str(arguments["x-dead-letter-routing-key"])


def put(queue: CeleryQueue, *batches: list[Event]) -> None:
    async def main() -> None:
        await asyncio.gather(*(queue.put(batch) for batch in batches))

    asyncio.run(main())


def test_queued_events_are_stored_exactly_once_by_the_worker(app, worker, queue, repo) -> None:
    events = [an_event() for _ in range(50)]
    copy = a_copy_of(events[0])

    put(queue, *([event] for event in events), [copy])
    put(queue, [events[1]])  # the same event queued twice: a redelivery

    wait_until(lambda: len(repo.stored) == 50 and len(repo.duplicates) == 1)
    wait_until(lambda: depth(app, app.conf.task_default_queue) == 0)
    assert sorted(e.event_id for e in repo.stored) == sorted(e.event_id for e in events)
    assert repo.duplicates[0].original_event_id == events[0].event_id
    assert queue.stats.batches < 51


def test_many_concurrent_puts_share_few_messages_and_the_worker_stores_every_event(
    app, worker, queue, repo
) -> None:
    events = [an_event() for _ in range(2000)]

    put(queue, *([event] for event in events))

    wait_until(lambda: len(repo.stored) == len(events))
    assert sorted(e.event_id for e in repo.stored) == sorted(e.event_id for e in events)
    assert queue.stats.batches <= len(events) / 20  # shared: a loaded machine makes more
    wait_until(lambda: depth(app, app.conf.task_default_queue) == 0)
    assert depth(app, dead_queue(app)) == 0


def test_a_repository_down_for_a_while_is_waited_out_and_nothing_is_dead_lettered(
    app, worker, queue, repo
) -> None:
    # Longer than a message is held (it is given back several times) and than the old budget
    # of MAX_RETRIES tries: what counts is DEDUP_RETRY_FOR, an hour here.
    repo.down_until = time.monotonic() + 8 * HOLD_SECONDS
    retried = value("dedup_retries_total")
    events = [an_event(), an_event()]

    put(queue, events)

    wait_until(lambda: len(repo.stored) == 2, timeout=30)
    assert repo.refused > MAX_RETRIES + 1
    assert value("dedup_retries_total") - retried >= 2  # given back to the queue meanwhile
    assert sorted(e.event_id for e in repo.stored) == sorted(e.event_id for e in events)
    wait_until(lambda: depth(app, app.conf.task_default_queue) == 0)
    assert depth(app, dead_queue(app)) == 0
    assert value("dedup_backend_waiting") == 0  # the breaker closed again


@pytest.mark.parametrize("worker", [4 * HOLD_SECONDS], indirect=True)
def test_a_repository_down_past_retry_for_dead_letters_the_message_and_replay_stores_it_once(
    app, worker, queue, repo
) -> None:
    repo.failures = 10**9
    events = [an_event(), an_event(), an_event()]

    put(queue, events)

    wait_until(lambda: depth(app, dead_queue(app)) == 1, timeout=30)
    assert repo.stored == []
    assert depth(app, app.conf.task_default_queue) == 0

    repo.failures = 0
    refused = repo.refused
    assert CeleryDeadLetters(app).replay() == 1

    wait_until(lambda: len(repo.stored) == 3)
    assert sorted(e.event_id for e in repo.stored) == sorted(e.event_id for e in events)
    wait_until(lambda: depth(app, app.conf.task_default_queue) == 0)
    assert depth(app, dead_queue(app)) == 0
    assert repo.refused == refused  # the replayed copy was stored at its first try


@pytest.mark.parametrize("worker", [4 * HOLD_SECONDS], indirect=True)
def test_a_replayed_dead_letter_starts_a_fresh_retry_for(app, worker, queue, repo) -> None:
    repo.failures = 10**9
    put(queue, [an_event()])
    wait_until(lambda: depth(app, dead_queue(app)) == 1, timeout=30)

    # Down a little longer, but for less than DEDUP_RETRY_FOR counted from the replay.
    repo.failures = 0
    repo.down_until = time.monotonic() + 2 * HOLD_SECONDS
    assert CeleryDeadLetters(app).replay() == 1

    wait_until(lambda: len(repo.stored) == 1, timeout=30)
    assert depth(app, dead_queue(app)) == 0


def test_a_malformed_message_is_dead_lettered_at_once_and_the_worker_goes_on(
    app, worker, queue, repo
) -> None:
    app.send_task(TASK_NAME, args=[[["not", "an", "event"]]], ignore_result=True)

    wait_until(lambda: depth(app, dead_queue(app)) == 1)
    put(queue, [an_event()])
    wait_until(lambda: len(repo.stored) == 1)
    assert repo.refused == 0


def test_a_poison_event_is_dead_lettered_alone_and_the_events_of_its_message_are_stored(
    app, worker, queue, repo
) -> None:
    poison = an_event({"refused": "always"})
    repo.refuses = {poison.content}
    fine = [an_event() for _ in range(6)]

    put(queue, [fine[0], poison, *fine[1:4]])  # one message of five, the poison among them
    put(queue, fine[4:])

    wait_until(lambda: depth(app, dead_queue(app)) == 1)
    wait_until(lambda: len(repo.stored) == len(fine))
    assert sorted(repo.stored, key=str) == sorted(fine, key=str)
    assert repo.refused == 0  # no retry was spent on it
    [(_headers, dead, _mode)] = drain(app, dead_queue(app))
    assert dead == [poison]  # a message of its own, as `dedup replay-dead` reads it
    wait_until(lambda: depth(app, app.conf.task_default_queue) == 0)


def test_a_bug_is_retried_like_an_outage_and_dead_lettered_only_after_its_retries(
    app, queue
) -> None:
    broken = BrokenDeduplicate()
    register_tasks(
        app,
        deduplicate=lambda: broken,  # type: ignore[arg-type, return-value]
        max_retries=MAX_RETRIES,
        backoff_base_seconds=0.01,
        backoff_max_seconds=0.05,
    )

    with running_worker(app):
        put(queue, [an_event()])
        wait_until(lambda: depth(app, dead_queue(app)) == 1)

    # Not acked as done, and not dead-lettered at once: a fix within the retries stores it.
    assert broken.calls == MAX_RETRIES + 1
    assert depth(app, app.conf.task_default_queue) == 0


def test_replay_moves_only_up_to_the_limit_and_nothing_from_an_empty_queue(app, queue) -> None:
    refusing = RefusingDeduplicate()  # dead-letters each message at once
    register_tasks(app, deduplicate=lambda: refusing)  # type: ignore[arg-type, return-value]
    with running_worker(app):
        put(queue, [an_event()])
        put(queue, [an_event()])
        wait_until(lambda: depth(app, dead_queue(app)) == 2)

    dead_letters = CeleryDeadLetters(app)
    assert dead_letters.count() == 2
    assert dead_letters.replay(limit=1) == 1
    assert depth(app, app.conf.task_default_queue) == 1
    assert dead_letters.replay() == 1
    assert dead_letters.replay() == 0
    assert depth(app, app.conf.task_default_queue) == 2
