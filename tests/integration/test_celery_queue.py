"""CeleryQueue against a real RabbitMQ: put() means a confirmed, persistent message, or an error."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from celery import Celery

from adapters.outbound.celery_queue import CeleryQueue
from application.messages import events_from_message
from domain.errors import BackendUnavailableError
from domain.event import Event
from tests.builders import an_event
from tests.integration.conftest import NOWHERE, a_test_app

pytestmark = pytest.mark.integration


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
