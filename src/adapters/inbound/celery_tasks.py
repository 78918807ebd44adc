"""The worker's edge: a Celery task that decodes a message and waits for its batch to be stored.

Group commit (issue 3): the worker runs Celery's thread pool; each task hands its events to the
process's BatchGatherer and blocks until one DeduplicateEvent run over everything pending has
taken them. Celery's own semantics stay per message: the task returns (and the message is acked)
only after that run succeeded; a failed run reaches the tasks BatchSettlement says it concerns,
each of which then retries with backoff or is dead-lettered on its own.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from celery.exceptions import Reject
from celery.worker.request import Request
from dedup.adapters.inbound.batch_gatherer import BatchGatherer
from dedup.adapters.metrics import record_batch, record_dead_letter, record_retry
from dedup.application.deduplicate_event import DeduplicateEvent
from dedup.application.messages import events_from_message
from dedup.domain.errors import BackendUnavailableError, PoisonEventError
from dedup.domain.event import Event, EventId

log = logging.getLogger(__name__)

TASK_NAME = "events.deduplicate"


def backoff_seconds(retries: int, *, base: float, cap: float) -> int:
    """Exponential backoff with jitter: half to all of min(cap, base * 2.0**retries), whole seconds.

    Whole seconds, at least one: on quorum queues Celery delays a retry through RabbitMQ's
    native delayed delivery, which refuses a countdown under one second, and a retry that
    cannot be published is dead-lettered at once.
    """
    return max(1, math.ceil(random.uniform(0.5, 1.0) * min(cap, base * 2.0**retries)))


class SerialAckRequest(Request):
    """Acks and rejects one at a time: the pool's threads share the consumer's AMQP channel.

    With the thread pool Celery acks from the thread that ran the task, and after a flush
    many of them finish at once; py-amqp does not lock its socket writes.
    """

    _channel_lock = threading.Lock()

    def acknowledge(self) -> None:
        with self._channel_lock:
            super().acknowledge()

    def reject(self, requeue: bool = False) -> None:
        with self._channel_lock:
            super().reject(requeue=requeue)


def register_tasks(
    app: Celery,
    *,
    deduplicate: Callable[[], DeduplicateEvent],
    max_retries: int = 8,
    backoff_base_seconds: float = 1.0,
    backoff_max_seconds: float = 60.0,
    max_batch_events: int = 20_000,
    min_flush_interval_seconds: float = 0.2,
    batch_timeout_seconds: float = 120.0,
) -> Task[Any, None]:
    """Register `events.deduplicate`; `deduplicate` is called in the worker process, after fork.

    Each task waits for a batch of up to max_batch_events, flushed at most every
    min_flush_interval_seconds, to be stored (see BatchGatherer). The task owns only the ack
    policy: success acks. Poison (a malformed message, or a PoisonEventError for one of its
    events) is rejected at once, so the broker dead-letters this message alone. Anything else
    (BackendUnavailableError, also the batch not stored within batch_timeout_seconds, or a
    bug, logged with its traceback) retries with backoff: the retry message is published
    before the original is acked, and only after max_retries does the task fail and the
    broker dead-letter the message (acks_late, no ack on failure).
    """

    def store(batch: list[Event]) -> None:
        began = time.perf_counter()
        outcome = deduplicate().execute(batch)
        record_batch(outcome, time.perf_counter() - began)
        log.info(
            "batch of %d events: %d stored, %d duplicates recorded, in %.3fs",
            len(batch),
            len(outcome.stored),
            len(outcome.duplicates),
            time.perf_counter() - began,
        )

    gatherer: BatchGatherer[Event] = BatchGatherer(
        store,
        backend="worker",
        max_items=max_batch_events,
        min_interval_seconds=min_flush_interval_seconds,
        timeout_seconds=batch_timeout_seconds,
        name="dedup-batch",
        event_id=_event_id,
    )

    def retry(task: Task[Any, None], exc: Exception) -> Exception:
        delay = backoff_seconds(
            task.request.retries, base=backoff_base_seconds, cap=backoff_max_seconds
        )
        log.warning("%s; retry %d in %ds", exc, task.request.retries + 1, delay)
        max_retries = task.max_retries
        if max_retries is not None and task.request.retries >= max_retries:
            record_dead_letter()
        else:
            record_retry()
        # Past max_retries, retry() re-raises exc: the task fails and is dead-lettered.
        return task.retry(exc=exc, countdown=delay)

    @app.task(
        name=TASK_NAME,
        bind=True,
        shared=False,  # a shared task would be registered on every app created later
        max_retries=max_retries,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        Request=SerialAckRequest,
    )
    def deduplicate_events(task: Task[Any, None], message: object) -> None:
        try:
            events = events_from_message(message)
        except ValueError as exc:
            raise _dead_letter(PoisonEventError(f"malformed message: {exc}")) from exc
        try:
            gatherer.submit(events)
        except PoisonEventError as exc:
            raise _dead_letter(exc) from exc
        except BackendUnavailableError as exc:
            raise retry(task, exc) from exc
        except Exception as exc:
            # A bug is not the message's fault: keep the message (retried, not dead-lettered
            # at once), so a fix or a rollback within the retries stores it.
            log.error("storing a batch failed on a bug", exc_info=exc)
            raise retry(task, exc) from exc

    return deduplicate_events


def _event_id(event: Event) -> EventId:
    return event.event_id


def _dead_letter(poison: PoisonEventError) -> Reject:
    log.error("dead-lettering a message that can never be stored: %s", poison)
    record_dead_letter()
    # Retrying cannot fix it; rejecting without requeue sends it to the dead letters.
    return Reject(str(poison), requeue=False)
