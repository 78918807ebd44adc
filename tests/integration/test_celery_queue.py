"""CeleryQueue against a real RabbitMQ: put() means a confirmed, persistent message, or an error."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Awaitable, Coroutine
from typing import Any

import pytest
from amqp import Message
from celery import Celery
from dedup.adapters.outbound.celery_queue import CeleryQueue
from dedup.application.messages import events_from_message, events_to_message
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event
from dedup.infrastructure.celery_app import create_celery_app

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


def raw_messages(app: Celery, name: str) -> list[Message]:
    with app.connection_for_write() as connection:
        channel = connection.channel()
        taken = []
        while (message := channel.basic_get(name, no_ack=True)) is not None:
            taken.append(message)
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


def test_a_message_carries_what_send_task_would_send_with_the_same_arguments(app, queue) -> None:
    events = [an_event(), an_event()]
    app.send_task(
        "events.deduplicate",
        args=[events_to_message(events)],
        argsrepr="[<2 events>]",
        ignore_result=True,
        queue=app.amqp.queues[app.conf.task_default_queue],
    )
    asyncio.run(queue.put(events))

    sent, published = raw_messages(app, app.conf.task_default_queue)

    def comparable(message: Message) -> tuple[object, ...]:
        headers = dict(message.headers)
        assert headers.pop("id") == headers.pop("root_id") == message.properties["correlation_id"]
        route = (message.delivery_info["exchange"], message.delivery_info["routing_key"])
        kept = ("content_type", "content_encoding", "delivery_mode", "priority", "reply_to")
        return headers, route, {key: message.properties.get(key) for key in kept}

    assert comparable(published) == comparable(sent)
    assert json.loads(published.body) == json.loads(sent.body)


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


def test_close_from_outside_the_loop_publishes_what_is_pending_then_refuses_puts(app) -> None:
    queue = CeleryQueue(app, max_wait_seconds=60)  # only close() can flush this put
    loop = asyncio.new_event_loop()
    running = threading.Thread(target=loop.run_forever)
    running.start()
    try:
        pending = asyncio.run_coroutine_threadsafe(queue.put([an_event()]), loop)
        # A round trip through the loop: the put has run up to its wait by then.
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(timeout=1)
        assert not pending.done()

        queue.close()

        assert pending.result(timeout=1) is None  # confirmed, not failed
        with pytest.raises(BackendUnavailableError, match="closed"):
            asyncio.run_coroutine_threadsafe(queue.put([an_event()]), loop).result(timeout=1)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        running.join()
        loop.close()

    assert len(drain(app, app.conf.task_default_queue)) == 1


async def gives_up_by_itself(put: Coroutine[Any, Any, None]) -> None:
    """Await a put that must fail on its own timeout: one that hangs fails the test instead.

    The bound is far above the queue's own timeout, so a slow machine cannot fail it; what
    it catches is a put that waits for a broker forever.
    """
    try:
        await asyncio.wait_for(put, timeout=60)
    except TimeoutError:
        pytest.fail("the put never gave up: it would hold its client for as long as the outage")


def test_an_unreachable_broker_fails_put_within_seconds() -> None:
    queue = CeleryQueue(a_test_app(NOWHERE), timeout_seconds=5.0)

    with pytest.raises(BackendUnavailableError) as caught:
        asyncio.run(gives_up_by_itself(queue.put([an_event()])))

    assert caught.value.backend == "broker"
    assert queue.stats.failures == 1
    queue.close()


def test_ping_answers_for_a_reachable_broker_and_raises_for_an_unreachable_one(queue) -> None:
    queue.ping()

    with pytest.raises(BackendUnavailableError):
        CeleryQueue(a_test_app(NOWHERE), timeout_seconds=1.0).ping()


def test_put_works_again_once_the_connection_was_lost(app) -> None:
    async def main() -> None:
        async with BrokerRelay() as relay:
            queue = CeleryQueue(via(relay.url, app))
            await queue.put([an_event()])
            await relay.cut()  # the broker connection is reset under the publisher

            await queue.put([an_event()])

            assert relay.connections == 2
            await queue.aclose()

    asyncio.run(main())

    assert len(drain(app, app.conf.task_default_queue)) == 2


def test_a_broker_that_stops_confirming_fails_put_within_the_timeout(app) -> None:
    confirmed, unconfirmed, later = an_event(), an_event(), an_event()

    async def main() -> None:
        async with BrokerRelay() as relay:
            queue = CeleryQueue(via(relay.url, app), timeout_seconds=1.0)
            await queue.put([confirmed])
            relay.stall()  # frames from the broker, confirms included, are held back

            with pytest.raises(BackendUnavailableError) as caught:
                await gives_up_by_itself(queue.put([unconfirmed]))

            assert caught.value.backend == "broker"
            relay.resume()
            await queue.put([later])  # on a new connection: the stalled channel is never reused
            assert relay.connections == 2
            await queue.aclose()

    asyncio.run(main())

    # The broker may hold the unconfirmed one too (the caller was told to retry): at least once.
    queued = {
        e.event_id for _, events, _ in drain(app, app.conf.task_default_queue) for e in events
    }
    assert {confirmed.event_id, later.event_id} <= queued


def test_a_channel_the_broker_closed_fails_its_put_and_the_next_put_declares_again(
    app, queue
) -> None:
    async def main() -> None:
        await queue.put([an_event()])
        delete_exchange(app, app.conf.task_default_queue)
        with pytest.raises(BackendUnavailableError):  # the broker closes the channel: 404
            await queue.put([an_event()])
        await queue.put([an_event()])

    asyncio.run(main())

    assert len(drain(app, app.conf.task_default_queue)) == 2
    assert queue.stats.failures == 1


def test_a_message_no_queue_would_take_fails_its_put_instead_of_vanishing(app, queue) -> None:
    """A broker confirms an unroutable message and drops it, unless it is published mandatory.

    With the events queue deleted under a running API (an operator, a policy), an "ok" for it
    would be a lie: the put fails (503, the client retries) and the next one declares again.
    """

    async def main() -> None:
        await queue.put([an_event()])
        delete_queue(app, app.conf.task_default_queue)
        with pytest.raises(BackendUnavailableError):
            await queue.put([an_event()])
        await queue.put([an_event()])

    asyncio.run(main())

    assert len(drain(app, app.conf.task_default_queue)) == 1  # the first went with its queue


def test_an_endpoint_that_never_answers_fails_put_within_the_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never speaks AMQP
        port = silent.getsockname()[1]
        queue = CeleryQueue(
            a_test_app(f"amqp://guest:guest@127.0.0.1:{port}//"), timeout_seconds=1.0
        )

        with pytest.raises(BackendUnavailableError):
            asyncio.run(gives_up_by_itself(queue.put([an_event()])))

        queue.close()


def test_many_concurrent_puts_share_few_messages_of_at_most_max_events(app, queue) -> None:
    events = [an_event() for _ in range(3000)]

    async def main() -> None:
        await asyncio.gather(*(queue.put([event]) for event in events))

    asyncio.run(main())

    sizes = [len(queued) for _, queued, _ in drain(app, app.conf.task_default_queue)]
    assert sum(sizes) == 3000
    assert len(sizes) == queue.stats.batches <= 3000 / 20  # shared: a loaded machine makes more
    assert max(sizes) <= 1000


def delete_exchange(app: Celery, name: str) -> None:
    with app.connection_for_write() as connection:
        channel = connection.channel()
        channel.exchange_delete(name)
        channel.close()


def delete_queue(app: Celery, name: str) -> None:
    with app.connection_for_write() as connection:
        channel = connection.channel()
        channel.queue_delete(name)
        channel.close()


def via(url: str, app: Celery) -> Celery:
    """An app on the same queues and exchanges as `app`, whose broker is at `url`."""
    arguments = app.amqp.queues[app.conf.task_default_queue].queue_arguments
    return create_celery_app(
        url,
        queue_name=app.conf.task_default_queue,
        dead_letter_queue=arguments["x-dead-letter-routing-key"],
        dead_letter_exchange=arguments["x-dead-letter-exchange"],
    )


class BrokerRelay:
    """A TCP relay to RabbitMQ on this loop, whose connections a test can reset or stall."""

    def __init__(self) -> None:
        self.connections = 0
        self._links: list[tuple[asyncio.StreamWriter, Awaitable[object]]] = []
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def __aenter__(self) -> BrokerRelay:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"amqp://guest:guest@127.0.0.1:{port}//"
        return self

    async def __aexit__(self, *_: object) -> None:
        self.resume()
        self._server.close()
        await self.cut()

    async def go_away(self) -> None:
        """The node is gone: its port refuses connections and its connections are reset."""
        self._server.close()
        await self.cut()

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def cut(self) -> None:
        """Reset every broker connection; return once each client noticed and hung up."""
        links, self._links = self._links, []
        for broker, _ in links:
            broker.transport.abort()
        await asyncio.wait_for(asyncio.gather(*(both for _, both in links)), timeout=5)

    async def _link(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        broker_in, broker_out = await asyncio.open_connection("127.0.0.1", 5672)
        both = asyncio.gather(
            self._pipe(client_in, broker_out), self._pipe(broker_in, client_out, held=True)
        )
        self._links.append((broker_out, both))
        await both

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, held: bool = False
    ) -> None:
        try:
            while data := await source.read(65536):
                if held:
                    await self._flowing.wait()
                sink.write(data)
                await sink.drain()
        except ConnectionError:
            pass
        finally:
            sink.close()
