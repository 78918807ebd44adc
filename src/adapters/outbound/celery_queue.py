"""The Queue port on RabbitMQ: group-committed, persistent, publisher-confirmed Celery messages."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence

from celery import Celery
from kombu import Connection, Producer

from adapters.metrics import record_publish, record_publish_failure
from adapters.outbound.dead_letters import broker_errors, dead_letter_queue_of, events_queue_of
from adapters.outbound.group_commit import CommitStats, GroupCommitter
from application.messages import events_to_message
from application.ports import Queue
from domain.errors import BackendUnavailableError
from domain.event import Event

log = logging.getLogger(__name__)

PERSISTENT = 2
# Few, short tries: an unreachable broker must turn into a 503 within timeout_seconds.
PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}


class CeleryQueue(Queue):
    """put() returns once the broker confirmed a persistent message holding the events.

    Concurrent puts are gathered (GroupCommitter) into one message of up to
    max_events_per_message events on background threads (`publishers`, each with a broker
    connection of its own), so the event loop never blocks on the broker. More than one keeps
    several messages awaiting their confirm at once; measured on 2 cores it did not help (the
    API is CPU-bound there), so one is the default.
    """

    def __init__(
        self,
        app: Celery,
        *,
        task_name: str = "events.deduplicate",
        queue_name: str | None = None,
        max_events_per_message: int = 1000,
        max_wait_seconds: float = 0.003,
        timeout_seconds: float = 5.0,
        publishers: int = 1,
    ) -> None:
        self._app = app
        self._task_name = task_name
        self._events = events_queue_of(app, queue_name)
        # Declared with every new connection, so a dead letter always has somewhere to go.
        self._dead = dead_letter_queue_of(self._events)
        self._declare = [self._events, self._dead]
        self._timeout = timeout_seconds
        # One connection per publishing thread: confirms are waited for per channel.
        self._local = threading.local()
        self._connections: dict[int, Connection] = {}
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._committer: GroupCommitter[Event] = GroupCommitter(
            self._publish,
            backend="broker",
            max_items=max_events_per_message,
            max_wait_seconds=max_wait_seconds,
            timeout_seconds=timeout_seconds,
            name="celery-queue",
            flushers=publishers,
        )

    @property
    def stats(self) -> CommitStats:
        """Messages published (batches) and events in them, so far."""
        return self._committer.stats

    async def put(self, events: Sequence[Event]) -> None:
        await self._committer.submit(events)

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
        # Its own short connection: the publishing one belongs to the committer's thread.
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

    def close(self) -> None:
        """Publish what is pending, then drop the connection."""
        self._committer.close(timeout=self._timeout)
        with self._lock:
            connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            _collect(connection)

    def _publish(self, batch: list[Event]) -> None:
        # Runs on one of the committer's threads, each with a connection of its own.
        started = time.perf_counter()  # a reconnect counts: the callers wait for it too
        try:
            producer = self._producer_for_thread()
            self._app.send_task(
                self._task_name,
                args=[events_to_message(batch)],
                # Celery would copy the events into a header and the worker's log line.
                argsrepr=f"[<{len(batch)} events>]",
                queue=self._events,
                producer=producer,
                declare=self._declare,
                delivery_mode=PERSISTENT,
                ignore_result=True,
                retry=True,
                retry_policy=PUBLISH_RETRY_POLICY,
                confirm_timeout=self._timeout,
            )
        except Exception:
            record_publish_failure()
            # A failed or timed-out confirm leaves the channel out of step (a late ack
            # would confirm the next message): never publish on it again.
            self._drop_connection()
            raise
        record_publish(time.perf_counter() - started, events=len(batch))

    def _producer_for_thread(self) -> Producer:
        if self._pid != os.getpid():
            # A forked child must not share the parent's sockets; it opens its own.
            self._local, self._connections, self._pid = threading.local(), {}, os.getpid()
        producer: Producer | None = getattr(self._local, "producer", None)
        if producer is None:
            # Confirms are forced here, whatever the app says: "ok" means the broker has it.
            connection = self._app.connection_for_write(transport_options={"confirm_publish": True})
            producer = Producer(connection)
            self._local.producer = producer
            with self._lock:
                self._connections[threading.get_ident()] = connection
        return producer

    def _drop_connection(self) -> None:
        self._local.producer = None
        with self._lock:
            connection = self._connections.pop(threading.get_ident(), None)
        if connection is not None:
            _collect(connection)


def _collect(connection: Connection) -> None:
    try:
        connection.collect()
    except Exception:  # closing a broken connection may fail too; it is dropped anyway
        log.debug("closing the broker connection failed", exc_info=True)
