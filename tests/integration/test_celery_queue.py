"""CeleryQueue against a real RabbitMQ: put() means a confirmed, persistent message, or an error."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from uuid import uuid4

import pytest
from celery import Celery
from kombu import Connection

from adapters.outbound.celery_queue import CeleryQueue
from application.messages import events_from_message
from domain.errors import BackendUnavailableError
from domain.event import Event
from infrastructure.celery_app import create_celery_app
from tests.builders import an_event

pytestmark = pytest.mark.integration

BROKER = "amqp://guest:guest@127.0.0.1:5672//"
NOWHERE = "amqp://guest:guest@127.0.0.1:1//"


def a_test_app(broker_url: str = BROKER) -> Celery:
    """An app on queues, exchanges and a dead-letter queue no other test uses."""
    tag = f"dedup.test.{uuid4().hex[:12]}"
    return create_celery_app(
        broker_url,
        queue_name=f"{tag}.events",
        dead_letter_queue=f"{tag}.dead",
        dead_letter_exchange=f"{tag}.dlx",
    )


def delete_topology(app: Celery) -> None:
    events = app.conf.task_default_queue
    args = app.amqp.queues[events].queue_arguments
    with app.connection_for_write() as connection:
        channel = connection.channel()
        channel.queue_delete(events)
        channel.queue_delete(args["x-dead-letter-routing-key"])
        channel.exchange_delete(events)
        channel.exchange_delete(args["x-dead-letter-exchange"])
        channel.close()


@pytest.fixture(scope="module", autouse=True)
def _rabbitmq() -> None:
    try:
        with Connection(BROKER, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        pytest.fail(f"RabbitMQ is not reachable at {BROKER} (make test starts it): {exc}")


@pytest.fixture
def app() -> Iterator[Celery]:
    app = a_test_app()
    yield app
    delete_topology(app)


@pytest.fixture
def queue(app: Celery) -> Iterator[CeleryQueue]:
    queue = CeleryQueue(app, timeout_seconds=5.0)
    yield queue
    queue.close()


def drain(app: Celery, name: str) -> list[tuple[dict[str, object], list[Event], int]]:
    """Take every message off a queue: (headers, events, delivery_mode) each."""
    taken = []
    with app.connection_for_write() as connection:
        channel = connection.channel()
        while (message := channel.basic_get(name, no_ack=True)) is not None:
            args, _kwargs, _embed = json.loads(message.body)
            taken.append(
                (message.headers, events_from_message(args[0]), message.properties["delivery_mode"])
            )
        channel.close()
    return taken


def depth(app: Celery, name: str) -> int:
    with app.connection_for_write() as connection:
        channel = connection.channel()
        count = channel.queue_declare(name, passive=True).message_count
        channel.close()
        return int(count)


def test_put_returns_once_the_events_are_a_persistent_task_message(app, queue) -> None:
    events = [an_event(), an_event(key="k-1")]

    asyncio.run(queue.put(events))

    ((headers, queued, delivery_mode),) = drain(app, app.conf.task_default_queue)
    assert headers["task"] == "events.deduplicate"
    assert headers["retries"] == 0
    assert queued == events
    assert delivery_mode == 2


def test_concurrent_puts_are_grouped_into_few_messages(app, queue) -> None:
    events = [an_event() for _ in range(300)]

    async def main() -> None:
        await asyncio.gather(*(queue.put([event]) for event in events))

    asyncio.run(main())

    messages = drain(app, app.conf.task_default_queue)
    assert len(messages) == queue.stats.batches
    assert len(messages) <= 30
    assert sorted(e.event_id for _, queued, _ in messages for e in queued) == sorted(
        e.event_id for e in events
    )


def test_a_message_holds_at_most_max_events_per_message(app) -> None:
    queue = CeleryQueue(app, max_events_per_message=10, max_wait_seconds=0.05)
    try:

        async def main() -> None:
            await asyncio.gather(*(queue.put([an_event(), an_event()]) for _ in range(20)))

        asyncio.run(main())
    finally:
        queue.close()

    sizes = [len(queued) for _, queued, _ in drain(app, app.conf.task_default_queue)]
    assert sum(sizes) == 40
    assert max(sizes) <= 10


def test_the_first_put_declares_the_dead_letter_queue(app, queue) -> None:
    asyncio.run(queue.put([an_event()]))

    dead = app.amqp.queues[app.conf.task_default_queue].queue_arguments
    assert depth(app, dead["x-dead-letter-routing-key"]) == 0  # passive: it exists


def test_an_unreachable_broker_fails_put_within_seconds() -> None:
    queue = CeleryQueue(a_test_app(NOWHERE), timeout_seconds=5.0)
    started = time.monotonic()

    with pytest.raises(BackendUnavailableError) as caught:
        asyncio.run(queue.put([an_event()]))

    assert caught.value.backend == "broker"
    assert time.monotonic() - started < 5.5
    assert queue.stats.failures == 1
    queue.close()


def test_ping_answers_for_a_reachable_broker_and_raises_for_an_unreachable_one(queue) -> None:
    queue.ping()

    with pytest.raises(BackendUnavailableError):
        CeleryQueue(a_test_app(NOWHERE), timeout_seconds=1.0).ping()


def test_put_works_again_once_the_connection_was_lost(app, queue) -> None:
    asyncio.run(queue.put([an_event()]))
    for connection in list(queue._connections.values()):
        connection.collect()  # the broker connections vanished under the publishers

    asyncio.run(queue.put([an_event()]))

    assert len(drain(app, app.conf.task_default_queue)) == 2
