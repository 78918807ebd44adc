"""The dead-letter queue: where the broker puts what the workers gave up on, and the way back."""

from __future__ import annotations

import logging
from typing import Any, cast

import amqp
from celery import Celery
from dedup.domain.errors import BackendUnavailableError
from kombu import Connection, Exchange, Producer
from kombu import Queue as KombuQueue
from kombu.exceptions import OperationalError
from kombu.transport.base import StdChannel

log = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = "x-dead-letter-exchange"
DEAD_LETTER_ROUTING_KEY = "x-dead-letter-routing-key"
_KEPT_PROPERTIES = ("correlation_id", "reply_to", "priority")


def broker_errors(connection: Connection) -> tuple[type[BaseException], ...]:
    """What the driver raises when the broker is gone, refuses, or did not confirm."""
    return (
        OperationalError,
        *connection.connection_errors,
        *connection.channel_errors,
        *connection.recoverable_connection_errors,
    )


def events_queue_of(app: Celery, queue_name: str | None = None) -> KombuQueue:
    """The declared events queue of the app (its default queue unless named)."""
    name = queue_name or app.conf.task_default_queue
    queue: KombuQueue = app.amqp.queues[name]
    return queue


def ready_messages(channel: StdChannel, queue: KombuQueue) -> int:
    """Messages ready in `queue` now; a channel error (which closes `channel`) if it is missing."""
    # amqp:// is kombu's py-amqp transport, whose channels are amqp.Channels.
    declared = cast(amqp.Channel, channel).queue_declare(queue.name, passive=True)
    assert declared is not None  # None is the answer to nowait=True only
    _name, ready, _consumers = declared
    return ready


def dead_letter_queue_of(queue: KombuQueue) -> KombuQueue:
    """The queue that receives what the broker dead-letters from `queue`, as its arguments say."""
    arguments = queue.queue_arguments or {}
    exchange = arguments.get(DEAD_LETTER_EXCHANGE)
    name = arguments.get(DEAD_LETTER_ROUTING_KEY)
    if not exchange or not name:
        raise ValueError(f"queue {queue.name!r} has no dead-letter exchange and routing key")
    # Same queue type as its source, so a quorum setup keeps its dead letters replicated too.
    kind = {key: arguments[key] for key in ("x-queue-type",) if key in arguments}
    return KombuQueue(
        name,
        Exchange(exchange, type="direct", durable=True),
        routing_key=name,
        durable=True,
        queue_arguments=kind or None,
    )


class CeleryDeadLetters:
    """Puts dead-lettered messages back on the events queue, each exactly as it was sent."""

    def __init__(self, app: Celery, *, queue_name: str | None = None) -> None:
        self._app = app
        self._events = events_queue_of(app, queue_name)
        self._dead = dead_letter_queue_of(self._events)

    def count(self) -> int:
        """How many messages wait in the dead-letter queue now."""
        with self._connect() as connection:
            try:
                return self._declare(connection.default_channel)
            except broker_errors(connection) as exc:
                raise BackendUnavailableError("broker", str(exc)) from exc

    def replay(self, *, limit: int | None = None) -> int:
        """Move the dead letters present now (at most limit) to the events queue; return how many.

        Each one is acked only after the broker confirmed its copy, so a crash in between
        leaves a duplicate message (harmless: dedup is idempotent), never a lost one.
        """
        with self._connect() as connection:
            moved = 0
            try:
                channel = connection.default_channel
                # Only what is there now: a message that fails again while we replay waits
                # for the next replay instead of looping here.
                present = self._declare(channel)
                wanted = present if limit is None else min(present, limit)
                producer = Producer(channel)
                while moved < wanted and (message := self._dead.bind(channel).get()) is not None:
                    producer.publish(
                        message.body,
                        exchange="",
                        routing_key=self._events.name,
                        headers=_fresh_headers(message.headers),
                        content_type=message.content_type,
                        content_encoding=message.content_encoding,
                        delivery_mode=2,
                        declare=[self._events],
                        **_kept_properties(message.properties),
                    )
                    message.ack()
                    moved += 1
            except broker_errors(connection) as exc:
                raise BackendUnavailableError("broker", f"replay stopped after {moved}") from exc
            log.info("replayed %d dead-lettered messages to %s", moved, self._events.name)
            return moved

    def _connect(self) -> Connection:
        # Confirms forced, whatever the app says: a dead letter is acked only once its copy is safe.
        connection: Connection = self._app.connection_for_write(
            transport_options={"confirm_publish": True}
        )
        try:
            connection.ensure_connection(
                max_retries=2,
                interval_start=0,
                # kombu takes seconds as a float; celery-types' stubs say int.
                interval_step=0.5,  # type: ignore[arg-type]
            )
        except broker_errors(connection) as exc:
            connection.release()
            raise BackendUnavailableError("broker", str(exc)) from exc
        return connection

    def _declare(self, channel: StdChannel) -> int:
        self._dead.bind(channel).declare()
        return ready_messages(channel, self._dead)


def _fresh_headers(headers: dict[str, Any] | None) -> dict[str, Any]:
    """The Celery headers with the retry count reset and the broker's death records dropped."""
    kept = {key: value for key, value in (headers or {}).items() if not key.startswith("x-")}
    kept["retries"] = 0
    return kept


def _kept_properties(properties: dict[str, Any]) -> dict[str, Any]:
    return {key: properties[key] for key in _KEPT_PROPERTIES if properties.get(key) is not None}
