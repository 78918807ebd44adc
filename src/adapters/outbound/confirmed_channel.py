"""A publisher-confirmed AMQP channel on the running loop that replaces itself after a fault,
on the next node of the broker's failover list when its own is gone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, cast

import aiormq
from aiormq.abc import AbstractConnection
from kombu import Queue as KombuQueue
from kombu.transport.base import (  # type: ignore[attr-defined]  # missing from celery-types' stubs
    to_rabbitmq_queue_arguments,
)
from pamqp import commands as spec
from yarl import URL

log = logging.getLogger(__name__)

# kombu's Queue shortcuts for x-expires, x-message-ttl ... (celery-types' stubs omit them).
_QUEUE_SHORTCUTS = ("expires", "message_ttl", "max_length", "max_length_bytes", "max_priority")


class ConfirmedChannel:
    """A confirmed aiormq channel: opened (and the queues declared) on first use, and replaced
    after any failure, since a failed or timed-out publish leaves its channel in doubt.

    `urls` are the nodes of one broker (a cluster), tried in turn from the one that last
    worked; a confirm comes from whichever node took the message, so it promises as much.
    """

    def __init__(
        self, urls: Sequence[URL], *, declare: Sequence[KombuQueue], timeout: float
    ) -> None:
        if not urls:
            raise ValueError("a confirmed channel needs at least one broker URL")
        self.urls = tuple(urls)
        self.declare = declare
        self._next = 0  # where the next opening starts: the node that last worked
        self.timeout = timeout
        self.current: aiormq.Channel | None = None
        self._opening: asyncio.Task[aiormq.Channel] | None = None
        self._closing: dict[AbstractConnection, asyncio.Task[None]] = {}

    async def publish(
        self, body: bytes, *, exchange: str, routing_key: str, properties: spec.Basic.Properties
    ) -> None:
        """Return once the broker acked the message; raise if it nacked or the channel closed.

        aiormq resolves a publish with Basic.Ack only: a Basic.Nack raises DeliveryError, a
        Basic.Return (no queue took it) PublishError, a channel or connection that closes
        rejects every publish awaiting its confirm. The caller bounds the wait (the committer
        cancels a flush at its callers' deadline).
        """
        channel = await self._ready()
        try:
            # wait=False: no wake-up per message once its frames are written; the confirm counts.
            # mandatory: a broker confirms a message no queue takes, and drops it; returned
            # instead, aiormq raises PublishError (the queue is declared again on reopening).
            await channel.basic_publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                properties=properties,
                mandatory=True,
                wait=False,
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

    async def _ready(self) -> aiormq.Channel:
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

    async def _open(self) -> aiormq.Channel:
        """A channel on the first node that takes one, trying each once from self._next."""
        failure: BaseException | None = None
        for step in range(len(self.urls)):
            index = (self._next + step) % len(self.urls)
            try:
                channel = await self._open_on(self.urls[index])
            except (OSError, TimeoutError, aiormq.exceptions.AMQPError) as exc:
                reason = str(exc) or type(exc).__name__  # a timeout says nothing itself
                log.warning("broker node %s: %s", _safe(self.urls[index]), reason)
                failure = exc
                continue
            if index != self._next:
                log.warning("publishing to broker node %s now", _safe(self.urls[index]))
            self._next = index
            return channel
        assert failure is not None
        raise failure

    async def _open_on(self, url: URL) -> aiormq.Channel:
        connection = aiormq.Connection(url)
        try:
            async with asyncio.timeout(self.timeout):
                await connection.connect()
                # aiormq.Connection opens aiormq.Channels; its signature promises only the ABC.
                channel = cast(aiormq.Channel, await connection.channel(publisher_confirms=True))
                for queue in self.declare:
                    await _declare(channel, queue)
        except BaseException:
            self._close_later(connection)
            raise
        return channel

    def _opened(self, opening: asyncio.Task[aiormq.Channel]) -> None:
        self._opening = None
        if not opening.cancelled() and opening.exception() is None:
            self.current = opening.result()

    def _discard(self, channel: aiormq.Channel) -> None:
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


def _safe(url: URL) -> str:
    """host:port, for a log line: never the password."""
    return f"{url.host}:{url.port}"


async def _declare(channel: aiormq.abc.AbstractChannel, queue: KombuQueue) -> None:
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
    shortcuts: dict[str, Any] = {name: getattr(queue, name) for name in _QUEUE_SHORTCUTS}
    await channel.queue_declare(
        queue.name,
        durable=queue.durable,
        exclusive=queue.exclusive,
        auto_delete=queue.auto_delete,
        arguments=to_rabbitmq_queue_arguments(queue.queue_arguments or {}, **shortcuts),
    )
    if exchange.name:
        await channel.queue_bind(
            queue.name,
            exchange.name,
            routing_key=queue.routing_key,
            arguments=queue.binding_arguments,
        )
