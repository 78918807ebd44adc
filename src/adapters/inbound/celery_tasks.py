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

from attrs import frozen
from celery import Celery, Task
from celery.exceptions import Reject
from celery.worker.request import Request
from dedup.adapters.inbound.backend_breaker import BackendBreaker
from dedup.adapters.inbound.batch_gatherer import BatchGatherer
from dedup.adapters.inbound.poison_isolation import store_around_poison
from dedup.adapters.metrics import (
    record_backend_waiting,
    record_batch,
    record_dead_letter,
    record_retry,
)
from dedup.application.deduplicate_event import DeduplicateEvent
from dedup.application.messages import events_from_message, events_to_message
from dedup.domain.errors import BackendUnavailableError, PoisonEventError
from dedup.domain.event import Event, EventId

log = logging.getLogger(__name__)

TASK_NAME = "events.deduplicate"
# The header a given-back message carries: an x- header, so `dedup replay-dead` drops it with
# the broker's own and a replayed message starts a fresh DEDUP_RETRY_FOR.
FAILING_SINCE = "x-dedup-failing-since"


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
    retry_for_seconds: float = 24 * 3600.0,
    hold_seconds: float = 300.0,
    breaker: BackendBreaker | None = None,
    max_retries: int = 8,
    backoff_base_seconds: float = 1.0,
    backoff_max_seconds: float = 60.0,
    max_batch_events: int = 20_000,
    min_flush_interval_seconds: float = 0.2,
    batch_timeout_seconds: float = 120.0,
    now: Callable[[], float] = time.time,
) -> Task[Any, None]:
    """Register `events.deduplicate`; `deduplicate` is called in the worker process, after fork.

    Each task waits for a batch of up to max_batch_events, flushed at most every
    min_flush_interval_seconds, to be stored (see BatchGatherer). The task owns only the ack
    policy: success acks. Poison (a malformed message, or a PoisonEventError for one of its
    events) is rejected at once, so the broker dead-letters this message alone.
    A backend that is away (BackendUnavailableError) is waited out: the task keeps its message
    and waits at the breaker for the next attempt. After hold_seconds (well under RabbitMQ's
    consumer_timeout) it gives the message back, republished with the time its failures began;
    only once they began retry_for_seconds ago is it dead-lettered. The worker holds at most
    its prefetch of messages meanwhile, so its memory stays flat however long the outage.
    A bug (any other error, logged with its traceback) retries with backoff, and only after
    max_retries does the broker dead-letter the message (acks_late, no ack on failure).
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
    wait_out = WaitOut(
        gatherer=gatherer,
        breaker=breaker or BackendBreaker(base_seconds=backoff_base_seconds),
        retry_for_seconds=retry_for_seconds,
        hold_seconds=hold_seconds,
        now=now,
    )

    def retry_bug(task: Task[Any, None], exc: Exception) -> Exception:
        delay = backoff_seconds(
            task.request.retries, base=backoff_base_seconds, cap=backoff_max_seconds
        )
        log.warning("%s; retry %d in %ds", exc, task.request.retries + 1, delay)
        max_retries = task.max_retries
        if max_retries is not None and task.request.retries >= max_retries:
            record_dead_letter("bug")
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
            raise _dead_letter(
                PoisonEventError(f"malformed message: {exc}"), reason="malformed"
            ) from exc
        try:
            wait_out(task, message, events, failing_since=_failing_since(task))
        except PoisonEventError as exc:
            if len(events) == 1:
                raise _dead_letter(exc, reason="refused") from exc
            _dead_letter_poison_alone(task, message, events, store=gatherer.submit)
        except Reject:
            raise
        except Exception as exc:
            # A bug is not the message's fault: keep the message (retried, not dead-lettered
            # at once), so a fix or a rollback within the retries stores it.
            log.error("storing a batch failed on a bug", exc_info=exc)
            raise retry_bug(task, exc) from exc

    return deduplicate_events


@frozen
class WaitOut:
    """Store a message's events once their backend is back; give the message back if long."""

    gatherer: BatchGatherer[Event]
    breaker: BackendBreaker
    retry_for_seconds: float
    hold_seconds: float
    now: Callable[[], float]

    def __call__(
        self,
        task: Task[Any, None],
        message: object,
        events: list[Event],
        *,
        failing_since: float | None,
    ) -> None:
        held_from = time.monotonic()
        while True:
            if self.breaker.is_open:  # no flush while the backend is away: wait for the probe
                held = time.monotonic() - held_from
                if held >= self.hold_seconds:
                    _give_back(task, message, failing_since=failing_since or self.now())
                    return
                self.breaker.wait(at_most=self.hold_seconds - held)
            try:
                self.gatherer.submit(events)
            except BackendUnavailableError as exc:
                began = failing_since if failing_since is not None else self.now()
                if self.breaker.failed():
                    log.warning("%s; waiting it out (up to %.0fs)", exc, self.retry_for_seconds)
                    record_backend_waiting(True)
                if self.now() - began >= self.retry_for_seconds:
                    raise _dead_letter_after_outage(exc, self.now() - began) from exc
                failing_since = began
            else:
                if self.breaker.succeeded():
                    log.warning("the backend answers again: storing resumes")
                    record_backend_waiting(False)
                return


def _give_back(task: Task[Any, None], message: object, *, failing_since: float) -> None:
    """Publish the message again (no ETA: nothing waits in worker memory); the original is
    acked when the task returns. A crash in between delivers it twice: dedup's own case."""
    record_retry()
    task.apply_async(args=(message,), headers={FAILING_SINCE: f"{failing_since:.3f}"})


def _failing_since(task: Task[Any, None]) -> float | None:
    """When the failures of this message began (epoch seconds), if an earlier try gave it back."""
    value = getattr(task.request, FAILING_SINCE, None)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None  # not ours to trust: the budget starts now


def _event_id(event: Event) -> EventId:
    return event.event_id


def _dead_letter(poison: PoisonEventError, *, reason: str) -> Reject:
    log.error("dead-lettering a message that can never be stored (%s): %s", reason, poison)
    record_dead_letter(reason)
    # Retrying cannot fix it; rejecting without requeue sends it to the dead letters.
    return Reject(str(poison), requeue=False)


def _dead_letter_poison_alone(
    task: Task[Any, None],
    message: object,
    events: list[Event],
    *,
    store: Callable[[list[Event]], None],
) -> None:
    """Store the good events of a message that holds poison; dead-letter the poison alone.

    The poison goes to the dead letters as a message of its own (what `dedup replay-dead`
    reads), then the original is acked. The backend gone meanwhile: the message is given back
    whole, and its stored events are redeliveries to dedup.
    """
    try:
        poison, error = store_around_poison(store, events)
    except BackendUnavailableError:
        _give_back(task, message, failing_since=time.time())
        return
    if not poison:
        return
    log.error(
        "dead-lettering %d of the %d events of a message, which can never be stored (refused): %s",
        len(poison),
        len(events),
        error,
    )
    record_dead_letter("refused")
    arguments = task.app.amqp.queues[task.app.conf.task_default_queue].queue_arguments or {}
    task.apply_async(
        args=(events_to_message(poison),),
        exchange=arguments["x-dead-letter-exchange"],
        routing_key=arguments["x-dead-letter-routing-key"],
    )


def _dead_letter_after_outage(exc: BackendUnavailableError, seconds: float) -> Reject:
    log.error("dead-lettering a message after %.0fs of %s (DEDUP_RETRY_FOR)", seconds, exc)
    record_dead_letter("outage")
    return Reject(f"{exc} for {seconds:.0f}s", requeue=False)
