"""The Celery task message (protocol 2) a worker reads, for a batch of events, without kombu."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from attrs import frozen
from celery import Celery
from celery.utils import uuid
from dedup.application.messages import events_to_message
from dedup.domain.event import Event
from kombu import Queue as KombuQueue
from pamqp import commands as spec

PERSISTENT = 2


@frozen
class TaskMessage:
    """One message ready for the wire: where it goes, its body and its AMQP properties."""

    exchange: str
    routing_key: str
    body: bytes
    properties: spec.Basic.Properties


@frozen
class CeleryTaskMessages:
    """Builds, for a batch of events, the persistent message send_task would publish."""

    app: Celery
    task_name: str
    exchange: str
    routing_key: str

    @classmethod
    def to(cls, queue: KombuQueue, *, app: Celery, task_name: str) -> CeleryTaskMessages:
        """Messages for `queue`, routed the way Celery's send_task_message routes them."""
        if queue.exchange.type == "direct":
            return cls(app, task_name, exchange="", routing_key=queue.name)
        return cls(
            app,
            task_name,
            exchange=queue.exchange.name or app.conf.task_default_exchange,
            routing_key=queue.routing_key or app.conf.task_default_routing_key,
        )

    def of(self, batch: Sequence[Event]) -> TaskMessage:
        task_id = uuid()
        headers, properties, body, _sent_event = self.app.amqp.as_task_v2(
            task_id,
            self.task_name,
            args=(events_to_message(batch),),
            # Celery would copy the events into a header and the worker's log line.
            argsrepr=f"[<{len(batch)} events>]",
            ignore_result=True,
            reply_to=self.app.thread_oid,
        )
        return TaskMessage(
            exchange=self.exchange,
            routing_key=self.routing_key,
            body=msgspec.json.encode(body),
            properties=spec.Basic.Properties(
                content_type="application/json",
                content_encoding="utf-8",
                headers=headers,
                delivery_mode=PERSISTENT,
                priority=0,
                # aiormq would make up a random message id; the task id says more.
                message_id=task_id,
                **properties,
            ),
        )
