"""The Queue port on RabbitMQ: group-committed, persistent, publisher-confirmed Celery messages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from functools import partial
from urllib.parse import quote

import aiormq
import msgspec
from aiormq.abc import AbstractChannel, AbstractConnection
from attrs import define
from celery import Celery
from celery.utils import uuid
from dedup.adapters.metrics import record_publish, record_publish_failure
from dedup.adapters.outbound.dead_letters import (
    broker_errors,
    dead_letter_queue_of,
    events_queue_of,
)
from dedup.adapters.outbound.group_commit import CommitStats, GroupCommitter
from dedup.application.messages import events_to_message
from dedup.application.ports import Queue
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event
from kombu import Connection
from kombu import Queue as KombuQueue
from kombu.transport.base import to_rabbitmq_queue_arguments
from pamqp import commands as spec
from yarl import URL

log = logging.getLogger(__name__)

PERSISTENT = 2


class CeleryQueue(Queue):
    """put() returns once the broker confirmed a persistent message holding the events.

    Concurrent puts on an event loop are gathered (GroupCommitter) into one Celery task
    message of up to max_events_per_message events, published from that loop with aiormq on
    a confirmed channel of its own; up to max_in_flight messages await their confirm at once.
    No thread and no blocking call: the API's loop only writes frames and reads confirms.
    """

    def __init__(
        self,
        app: Celery,
        *,
        task_name: str = "events.deduplicate",
        queue_name: str | None = None,
        max_events_per_message: int = 1000,
        max_wait_seconds: float = 0.006,
        timeout_seconds: float = 5.0,
        max_in_flight: int = 8,
    ) -> None:
        self._app = app
        self._task_name = task_name
        self._events = events_queue_of(app, queue_name)
        # Declared with every new connection, so a dead letter always has somewhere to go.
        self._dead = dead_letter_queue_of(self._events)
        self._exchange, self._routing_key = _route_of(app, self._events)
        self._url = _aiormq_url(app)
        self._timeout = timeout_seconds
        self._stats = CommitStats()
        self._new_committer = partial(
            GroupCommitter[Event],
            backend="broker",
            max_items=max_events_per_message,
            max_wait_seconds=max_wait_seconds,
            timeout_seconds=timeout_seconds,
            max_in_flight=max_in_flight,
            stats=self._stats,
        )
        # A connection's reader and writer are tasks of one loop: each loop has its own.
        self._loops: dict[asyncio.AbstractEventLoop, _LoopPublisher] = {}
        self._closed = False

    @property
    def stats(self) -> CommitStats:
        """Messages published (batches) and events in them, so far, on every event loop."""
        return self._stats

    async def put(self, events: Sequence[Event]) -> None:
        if self._closed:
            raise BackendUnavailableError("broker", "the publisher is closed")
        await self._publisher_here().committer.submit(events)

    def ping(self) -> None:
        """Connect to the broker and close again; BackendUnavailableError if that fails."""
        connection: Connection = self._app.connection_for_write(
            connect_timeout=min(self._timeout, 2.0)
        )
        try:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=self._timeout)
        except broker_errors(connection) as exc:
            raise BackendUnavailableError("broker", str(exc)) from exc
        finally:
            connection.release()

    def depth(self) -> dict[str, int]:
        """Messages ready in the events and dead-letter queues now (a queue not declared yet is
        left out); BackendUnavailableError if the broker cannot be asked."""
        # A short kombu connection of its own: this is sync, rare, and off the publishing path.
        connection: Connection = self._app.connection_for_write(
            connect_timeout=min(self._timeout, 2.0)
        )
        depths: dict[str, int] = {}
        try:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=self._timeout)
            for role, queue in (("events", self._events), ("dead_letters", self._dead)):
                # One channel per queue: a passive declare of a missing queue closes its channel.
                channel = connection.channel()
                try:
                    declared = queue.bind(channel).queue_declare(passive=True)
                    depths[role] = int(declared.message_count)
                except connection.channel_errors:
                    log.debug("queue %s is not declared yet", queue.name)
                finally:
                    channel.close()
        except broker_errors(connection) as exc:
            raise BackendUnavailableError("broker", str(exc)) from exc
        finally:
            connection.release()
        return depths

    async def aclose(self) -> None:
        """close() for a caller on an event loop (the ASGI shutdown hook): awaits this loop's."""
        here = self._loops.pop(asyncio.get_running_loop(), None)
        self.close()
        if here is not None:
            await here.aclose()

    def close(self) -> None:
        """Refuse later puts; publish what is pending and close the connections (bounded).

        A loop that has ended needs nothing: asyncio.run cancelled its tasks, and aiormq's
        writer answers that cancellation with Connection.Close.
        """
        self._closed = True
        publishers, self._loops = self._loops, {}
        for loop, publisher in publishers.items():
            if loop.is_closed():
                continue
            if not loop.is_running():
                loop.run_until_complete(publisher.aclose())
                continue
            closing = asyncio.run_coroutine_threadsafe(publisher.aclose(), loop)
            if not _runs_here(loop):  # waiting here for our own loop would block it for good
                with contextlib.suppress(Exception):
                    closing.result(timeout=3 * self._timeout)

    def _publisher_here(self) -> _LoopPublisher:
        loop = asyncio.get_running_loop()
        publisher = self._loops.get(loop)
        if publisher is None:
            for ended in [old for old in self._loops if old.is_closed()]:
                del self._loops[ended]
            channel = _ConfirmedChannel(
                self._url, declare=(self._events, self._dead), timeout=self._timeout
            )
            committer = self._new_committer(partial(self._publish, channel))
            publisher = self._loops.setdefault(loop, _LoopPublisher(committer, channel))
        return publisher

    async def _publish(self, channel: _ConfirmedChannel, batch: list[Event]) -> None:
        started = time.perf_counter()  # a reconnect counts: the callers wait for it too
        body, properties = self._task_message(batch)
        try:
            await channel.publish(
                body, exchange=self._exchange, routing_key=self._routing_key, properties=properties
            )
        except BaseException:  # a timeout reaches here as a cancellation
            record_publish_failure()
            raise
        record_publish(time.perf_counter() - started, events=len(batch))

    def _task_message(self, batch: list[Event]) -> tuple[bytes, spec.Basic.Properties]:
        """The protocol-2 task message send_task would publish, with a JSON body."""
        task_id = uuid()
        headers, properties, body, _sent_event = self._app.amqp.as_task_v2(
            task_id,
            self._task_name,
            args=[events_to_message(batch)],
            # Celery would copy the events into a header and the worker's log line.
            argsrepr=f"[<{len(batch)} events>]",
            ignore_result=True,
            reply_to=self._app.thread_oid,
        )
        return msgspec.json.encode(body), spec.Basic.Properties(
            content_type="application/json",
            content_encoding="utf-8",
            headers=headers,
            delivery_mode=PERSISTENT,
            priority=0,
            # aiormq would make up a random message id; the task id says more.
            message_id=task_id,
            **properties,
        )


@define
class _LoopPublisher:
    """What publishes for one event loop: its committer and its broker channel."""

    committer: GroupCommitter[Event]
    channel: _ConfirmedChannel

    async def aclose(self) -> None:
        await self.committer.aclose()
        await self.channel.aclose()


class _ConfirmedChannel:
    """A confirmed aiormq channel on the current loop: opened (and the topology declared) on
    first use, and replaced after any failure, since a failed or timed-out publish leaves its
    channel in doubt."""

    def __init__(self, url: URL, *, declare: Sequence[KombuQueue], timeout: float) -> None:
        self.url = url
        self.declare = declare
        self.timeout = timeout
        self.current: AbstractChannel | None = None
        self._opening: asyncio.Task[AbstractChannel] | None = None
        self._closing: dict[AbstractConnection, asyncio.Task[None]] = {}

    async def publish(
        self, body: bytes, *, exchange: str, routing_key: str, properties: spec.Basic.Properties
    ) -> None:
        """Return once the broker acked the message; raise if it nacked or the channel closed.

        aiormq resolves a publish with Basic.Ack only: a Basic.Nack raises DeliveryError, a
        channel or connection that closes rejects every publish awaiting its confirm. The
        caller bounds the wait (the committer cancels a flush at its callers' deadline).
        """
        channel = await self._ready()
        try:
            # wait=False: no drain round trip per message; the confirm is what counts.
            await channel.basic_publish(
                body, exchange=exchange, routing_key=routing_key, properties=properties, wait=False
            )
        except BaseException:
            self._discard(channel)
            raise

    async def aclose(self) -> None:
        opening = self._opening
        if opening is not None:
            opening.cancel()
            await asyncio.wait([opening])  # _open closes what it had opened so far
        if self.current is not None:
            self._discard(self.current)
        if self._closing:
            await asyncio.wait(list(self._closing.values()))

    async def _ready(self) -> AbstractChannel:
        channel = self.current
        if channel is not None and not channel.is_closed:
            return channel
        if channel is not None:
            self._discard(channel)  # the broker closed it, or its connection died
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
            self._opening.add_done_callback(self._opened)
        # Shared by every flush that waits for it; one that gives up must not cancel it.
        return await asyncio.shield(self._opening)

    async def _open(self) -> AbstractChannel:
        connection = aiormq.Connection(self.url)
        try:
            async with asyncio.timeout(self.timeout):
                await connection.connect()
                channel = await connection.channel(publisher_confirms=True)
                for queue in self.declare:
                    await _declare(channel, queue)
        except BaseException:
            self._close_later(connection)
            raise
        return channel

    def _opened(self, opening: asyncio.Task[AbstractChannel]) -> None:
        self._opening = None
        if not opening.cancelled() and opening.exception() is None:
            self.current = opening.result()

    def _discard(self, channel: AbstractChannel) -> None:
        if self.current is channel:
            self.current = None
        self._close_later(channel.connection)

    def _close_later(self, connection: AbstractConnection) -> None:
        if connection.is_closed or connection in self._closing:
            return
        closing = asyncio.ensure_future(self._close(connection))
        self._closing[connection] = closing
        closing.add_done_callback(lambda _: self._closing.pop(connection, None))

    async def _close(self, connection: AbstractConnection) -> None:
        # Its unconfirmed publishes fail with this: none of them may count as delivered.
        reason = aiormq.exceptions.ConnectionClosed(320, "dropped by the publisher")
        try:
            async with asyncio.timeout(self.timeout):
                await connection.close(reason)
        except Exception:  # a broken connection may fail to close too; it is dropped anyway
            log.debug("closing the broker connection failed", exc_info=True)


async def _declare(channel: AbstractChannel, queue: KombuQueue) -> None:
    """What kombu's Queue.declare sends for a queue bound to one exchange, with aiormq."""
    exchange = queue.exchange
    if exchange.name:
        await channel.exchange_declare(
            exchange.name,
            exchange_type=exchange.type,
            durable=exchange.durable,
            auto_delete=exchange.auto_delete,
            passive=bool(exchange.passive),
            arguments=exchange.arguments,
        )
    await channel.queue_declare(
        queue.name,
        durable=queue.durable,
        exclusive=queue.exclusive,
        auto_delete=queue.auto_delete,
        arguments=to_rabbitmq_queue_arguments(
            queue.queue_arguments or {},
            expires=queue.expires,
            message_ttl=queue.message_ttl,
            max_length=queue.max_length,
            max_length_bytes=queue.max_length_bytes,
            max_priority=queue.max_priority,
        ),
    )
    if exchange.name:
        await channel.queue_bind(
            queue.name,
            exchange.name,
            routing_key=queue.routing_key,
            arguments=queue.binding_arguments,
        )


def _route_of(app: Celery, queue: KombuQueue) -> tuple[str, str]:
    """The exchange and routing key Celery's send_task_message picks for a message to `queue`."""
    if queue.exchange.type == "direct":
        return "", queue.name
    return (
        queue.exchange.name or app.conf.task_default_exchange,
        queue.routing_key or app.conf.task_default_routing_key,
    )


def _aiormq_url(app: Celery) -> URL:
    """The app's broker as an aiormq URL: kombu parses it (pyamqp://, `//` for vhost /)."""
    with app.connection_for_write() as connection:
        info = connection.info()
    base = URL.build(
        scheme="amqps" if info["ssl"] else "amqp",
        user=info["userid"],
        password=info["password"],
        host=info["hostname"],
        port=info["port"],
    )
    # One path segment: vhost "/" is "%2F", not an empty path.
    return base.with_path("/" + quote(info["virtual_host"], safe=""), encoded=True)


def _runs_here(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
