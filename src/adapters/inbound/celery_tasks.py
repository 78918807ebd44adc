"""The worker's edge: one Celery task that decodes a message and runs DeduplicateEvent on it."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable

from celery import Celery, Task
from celery.exceptions import Reject

from application.deduplicate_event import DeduplicateEvent
from application.messages import events_from_message
from domain.errors import BackendUnavailableError

log = logging.getLogger(__name__)

TASK_NAME = "events.deduplicate"


def backoff_seconds(retries: int, *, base: float, cap: float) -> int:
    """Exponential backoff with jitter: half to all of min(cap, base * 2**retries), whole seconds.

    Whole seconds, at least one: on quorum queues Celery delays a retry through RabbitMQ's
    native delayed delivery, which refuses a countdown under one second, and a retry that
    cannot be published is dead-lettered at once.
    """
    return max(1, math.ceil(random.uniform(0.5, 1.0) * min(cap, base * 2**retries)))


def register_tasks(
    app: Celery,
    *,
    deduplicate: Callable[[], DeduplicateEvent],
    max_retries: int = 8,
    backoff_base_seconds: float = 1.0,
    backoff_max_seconds: float = 60.0,
) -> Task:
    """Register `events.deduplicate`; `deduplicate` is called in the worker process, after fork.

    The task owns only the ack policy: success acks; BackendUnavailableError retries with
    backoff (the retry message is published before the original is acked); after max_retries,
    or at once for a malformed message or any other error, the task fails and the broker
    dead-letters the message (acks_late, no ack on failure).
    """

    @app.task(
        name=TASK_NAME,
        bind=True,
        shared=False,  # a shared task would be registered on every app created later
        max_retries=max_retries,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
    )
    def deduplicate_events(task: Task, message: object) -> None:
        try:
            events = events_from_message(message)
        except ValueError as exc:
            log.error("dead-lettering a malformed message: %s", exc)
            # Retrying cannot fix it; rejecting without requeue sends it to the dead letters.
            raise Reject(f"malformed message: {exc}", requeue=False) from exc
        try:
            deduplicate().execute(events)
        except BackendUnavailableError as exc:
            delay = backoff_seconds(
                task.request.retries, base=backoff_base_seconds, cap=backoff_max_seconds
            )
            log.warning("%s; retry %d in %ds", exc, task.request.retries + 1, delay)
            # Past max_retries, retry() re-raises exc: the task fails and is dead-lettered.
            raise task.retry(exc=exc, countdown=delay) from exc

    return deduplicate_events
