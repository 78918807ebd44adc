"""The Celery app: broker topology, settings that keep a message until it is stored, the worker."""

from __future__ import annotations

import logging
import os
from typing import Any, Literal

from celery import Celery, bootsteps
from dedup.adapters.outbound.dead_letters import dead_letter_queue_of, events_queue_of
from kombu import Exchange, Queue

Pool = Literal["prefork", "solo", "threads"]
BROKER_SCHEMES = ("amqp://", "amqps://", "pyamqp://")


class DeclareDeadLetters(bootsteps.StartStopStep):
    """Worker step: declare the dead-letter exchange and queue on every (re)connection.

    RabbitMQ drops a dead-lettered message silently when its exchange does not exist; the
    worker declares it before it consumes anything, since only a consuming worker fails one.
    """

    requires = ("celery.worker.consumer.connection:Connection",)

    def start(self, parent: Any) -> None:
        queue = dead_letter_queue_of(events_queue_of(parent.app))
        queue.bind(parent.connection.default_channel).declare()


def create_celery_app(
    broker_url: str,
    *,
    queue_name: str = "dedup.events",
    dead_letter_queue: str = "dedup.dead",
    dead_letter_exchange: str = "dedup.dlx",
    quorum: bool = False,
    delivery_limit: int = 20,
    prefetch: int = 2,
    main: str = "dedup",
) -> Celery:
    """A Celery app on RabbitMQ that acks a message only once its task succeeded."""
    if not broker_url.startswith(BROKER_SCHEMES):
        raise ValueError(
            f"the Celery broker must be an amqp:// URL, got {broker_url.partition(':')[0]}"
        )
    arguments: dict[str, Any] = {
        "x-dead-letter-exchange": dead_letter_exchange,
        "x-dead-letter-routing-key": dead_letter_queue,
    }
    if quorum:
        # A quorum queue drops a message redelivered delivery_limit times unless it has a DLX.
        arguments |= {"x-queue-type": "quorum", "x-delivery-limit": delivery_limit}
    # A topic exchange, because Celery's native delayed delivery (retries on quorum queues)
    # routes through topic exchanges; it works the same for classic queues.
    events = Queue(
        queue_name,
        Exchange(queue_name, type="topic", durable=True),
        routing_key=queue_name,
        durable=True,
        queue_arguments=arguments,
    )
    app = Celery(main, set_as_current=False)
    app.conf.update(
        broker_url=broker_url,
        broker_connection_retry_on_startup=True,
        # Without confirms a publish can be dropped silently; with them put() can promise.
        broker_transport_options={"confirm_publish": True},
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_queues=[events],
        task_default_queue=queue_name,
        task_default_exchange=queue_name,
        task_default_exchange_type="topic",
        task_default_routing_key=queue_name,
        task_create_missing_queues=False,
        task_default_delivery_mode="persistent",
        # The three settings that keep a message until its task succeeded (DESIGN.md §3).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=False,
        # Unacked messages in flight = prefetch x threads: a full batch waits in every thread
        # while the next one is already here, so a flush never waits for the broker.
        worker_prefetch_multiplier=prefetch,
        # Unacked messages come back on a lost connection anyway; do not run them twice here.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # After a reconnect Celery would shrink the prefetch to what the busy threads leave
        # (here: every thread waits for its batch, so almost nothing) and grow it back one ack
        # at a time; the worker then crawled or stalled after a broker restart.
        worker_enable_prefetch_count_reduction=False,
        # No remote control: nothing here uses it, and after a broker restart its pidbox
        # queue.declare blocked the worker's reconnect while tasks already ran, so their acks
        # waited for an event loop that had not started (seen in the fault tests).
        worker_enable_remote_control=False,
    )
    app.steps["consumer"].add(DeclareDeadLetters)
    return app


# Celery logs two INFO lines per task ("received", "succeeded"). At hundreds of messages a
# second that is nearly all of the log and, measured under the batch load, ~10% of the
# worker's CPU (its 64 task threads queue for the log handler's lock). The worker logs one
# line per stored batch instead, and every retry and dead letter; DEBUG brings these back.
PER_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


def quiet_per_task_logs(loglevel: str) -> None:
    """Raise Celery's per-task loggers to WARNING unless the worker logs at DEBUG."""
    if logging.getLevelName(loglevel.upper()) != logging.DEBUG:
        for name in PER_TASK_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


def run_worker(
    app: Celery,
    *,
    concurrency: int,
    pool: Pool = "threads",
    loglevel: str = "INFO",
) -> None:
    """Run a worker on the events queue until it is stopped; tasks must be registered first.

    The thread pool by default: each task only waits for its batch (BatchGatherer), so
    concurrency is how many messages one batch can gather, not how many CPUs work.
    """
    quiet_per_task_logs(loglevel)
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--pool={pool}",
            f"--loglevel={loglevel}",
            f"--queues={app.conf.task_default_queue}",
            # A node name of its own: two workers on one host would otherwise fight over one
            # exclusive remote-control (pidbox) queue, and the second would die at start.
            f"--hostname=dedup-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )
