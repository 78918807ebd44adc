"""The Queue port on RabbitMQ: group-committed, persistent, publisher-confirmed Celery messages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any
from urllib.parse import quote

import aiormq
from attrs import define
from celery import Celery
from dedup.adapters.metrics import record_publish, record_publish_failure
from dedup.adapters.outbound.celery_task_message import CeleryTaskMessages
from dedup.adapters.outbound.confirmed_channel import ConfirmedChannel
from dedup.adapters.outbound.dead_letters import (
    broker_errors,
    dead_letter_queue_of,
    events_queue_of,
    ready_messages,
)
from dedup.adapters.outbound.group_commit import CommitStats, GroupCommitter
from dedup.application.ports import Queue
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event
from kombu import Connection
from yarl import URL

log = logging.getLogger(__name__)


# What publishing raises when the broker is away, refuses a message (nack) or closes the
# channel: the group commit answers these as "unavailable" (503), anything else as a bug.
# ChannelInvalidStateError is a RuntimeError: a publish that waited for a channel closed
# meanwhile (several flushes share one).
BROKER_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
)


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
        self._events = events_queue_of(app, queue_name)
        # Declared with every new connection, so a dead letter always has somewhere to go.
        self._dead = dead_letter_queue_of(self._events)
        self._messages = CeleryTaskMessages.to(self._events, app=app, task_name=task_name)
        self._urls = aiormq_urls(app)
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
            unavailable=BROKER_UNAVAILABLE,
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
        """Connect to the broker (any node of its failover list) and close again;
        BackendUnavailableError if none answers."""
        with self._connected():
            pass

    def depth(self) -> dict[str, int]:
        """Messages ready in the events and dead-letter queues now (a queue not declared yet is
        left out); BackendUnavailableError if the broker cannot be asked."""
        depths: dict[str, int] = {}
        with self._connected() as connection:
            for role, queue in (("events", self._events), ("dead_letters", self._dead)):
                # One channel per queue: a passive declare of a missing queue closes its channel.
                channel = connection.channel()
                try:
                    depths[role] = ready_messages(channel, queue)
                except connection.channel_errors:
                    log.debug("queue %s is not declared yet", queue.name)
                finally:
                    connection.maybe_close_channel(channel)
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

    @contextlib.contextmanager
    def _connected(self) -> Iterator[Connection]:
        # A short kombu connection of its own: ping and depth are sync, rare, and off the
        # publishing path.
        connection: Connection = self._app.connection_for_write(
            connect_timeout=min(self._timeout, 2.0)
        )
        try:
            connection.ensure_connection(
                # Each node of a failover list once (kombu moves to the next after a failure);
                # a single broker is tried twice.
                max_retries=max(1, len(connection.alt) - 1),
                interval_start=0,
                # kombu takes seconds as a float; celery-types' stubs say int.
                timeout=self._timeout,  # type: ignore[arg-type]
            )
            yield connection
        except broker_errors(connection) as exc:
            raise BackendUnavailableError("broker", str(exc)) from exc
        finally:
            connection.release()

    def _publisher_here(self) -> _LoopPublisher:
        loop = asyncio.get_running_loop()
        publisher = self._loops.get(loop)
        if publisher is None:
            for ended in [old for old in self._loops if old.is_closed()]:
                del self._loops[ended]
            channel = ConfirmedChannel(
                self._urls, declare=(self._events, self._dead), timeout=self._timeout
            )
            committer = self._new_committer(partial(self._publish, channel))
            publisher = self._loops.setdefault(loop, _LoopPublisher(committer, channel))
        return publisher

    async def _publish(self, channel: ConfirmedChannel, batch: list[Event]) -> None:
        started = time.perf_counter()  # a reconnect counts: the callers wait for it too
        message = self._messages.of(batch)
        try:
            await channel.publish(
                message.body,
                exchange=message.exchange,
                routing_key=message.routing_key,
                properties=message.properties,
            )
        except BaseException:  # a timeout reaches here as a cancellation
            record_publish_failure()
            raise
        record_publish(time.perf_counter() - started, events=len(batch))


@define
class _LoopPublisher:
    """What publishes for one event loop: its committer and its broker channel."""

    committer: GroupCommitter[Event]
    channel: ConfirmedChannel

    async def aclose(self) -> None:
        await self.committer.aclose()
        await self.channel.aclose()


def aiormq_urls(app: Celery) -> tuple[URL, ...]:
    """The app's broker nodes as aiormq URLs, in the order of its failover list (one URL for a
    single broker): kombu parses each (pyamqp://, `//` for vhost /)."""
    with app.connection_for_write() as connection:
        alternates = list(connection.alt)
        if not alternates:
            return (_aiormq_url(connection.info()),)
    urls = []
    for alternate in alternates:
        # Each on its own: kombu's switch() would fill a missing part from the node before.
        with app.connection_for_write(url=alternate) as connection:
            urls.append(_aiormq_url(connection.info()))
    return tuple(urls)


def _aiormq_url(info: dict[str, Any]) -> URL:
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
