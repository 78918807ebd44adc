"""Group commit in the worker: many task threads' events go through one flush, paced.

The event-loop twin for the API side is adapters.outbound.group_commit; this one is for
plain threads (Celery's thread pool), and the two packages never import each other.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from attrs import define, field
from dedup.application.batch_settlement import BatchSettlement, event_ids_by_item, failure_of
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import EventId

log = logging.getLogger(__name__)

T = TypeVar("T")


@define
class GatherStats:
    """What the flusher did so far: flushes, items in them, flushes that failed, largest one."""

    flushes: int = 0
    items: int = 0
    failures: int = 0
    largest: int = 0


@define(eq=False)
class _Submission(Generic[T]):
    items: list[T]
    done: threading.Event = field(factory=threading.Event)
    error: BaseException | None = None


class BatchGatherer(Generic[T]):
    """submit(items) blocks until flush() ran on a batch holding them; raises what it raised.

    One flusher thread per process takes every pending submission (whole, up to max_items,
    at least one) and calls flush(batch) once for all of them. Flushes start at least
    min_interval_seconds apart, so under load there are at most 1/min_interval flushes per
    second however many threads submit, and an idle gatherer flushes a lone submission at
    once. A failed flush is settled by BatchSettlement: a BackendUnavailableError reaches
    every submitter of the batch (each its own copy); a PoisonEventError only the submitters
    holding its events (named through `event_id`), the rest being flushed again without them;
    any other error only the submitters whose submission fails when flushed alone, as it is.
    A submission not flushed within timeout_seconds raises BackendUnavailableError (it is
    withdrawn unless a flush has it already).
    """

    def __init__(
        self,
        flush: Callable[[list[T]], object],
        *,
        backend: str = "worker",
        max_items: int = 20_000,
        min_interval_seconds: float = 0.2,
        timeout_seconds: float = 120.0,
        name: str = "batch-gatherer",
        event_id: Callable[[T], EventId] | None = None,
    ) -> None:
        if max_items <= 0 or min_interval_seconds < 0 or timeout_seconds <= 0:
            raise ValueError("max_items and timeout_seconds must be positive, min_interval >= 0")
        self._flush = flush
        self._backend = backend
        self._max_items = max_items
        self._min_interval = min_interval_seconds
        self._timeout = timeout_seconds
        self._name = name
        self._event_id = event_id
        self.stats = GatherStats()
        self._reset()

    def _reset(self) -> None:
        # Also run in a forked child: the parent's thread and buffer did not come along.
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._pending: deque[_Submission[T]] = deque()
        self._last_start = float("-inf")
        self._closing = False
        self._thread: threading.Thread | None = None

    def submit(self, items: Sequence[T]) -> None:
        """Return once a flush holding these items succeeded; raise its error otherwise."""
        if not items:
            return
        submission: _Submission[T] = _Submission(list(items))
        self._enqueue(submission)
        if not submission.done.wait(self._timeout):
            with self._cond:
                if submission in self._pending:
                    self._pending.remove(submission)
            raise BackendUnavailableError(
                self._backend, f"batch not flushed within {self._timeout}s"
            )
        if submission.error is not None:
            raise submission.error

    def waiting(self) -> int:
        """Submissions waiting for a flush to take them."""
        with self._cond:
            return len(self._pending)

    def close(self, timeout: float | None = None) -> None:
        """Flush what is pending, then stop the thread; later submits fail."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and self._pid == os.getpid():
            thread.join(timeout)

    def _enqueue(self, submission: _Submission[T]) -> None:
        if self._pid != os.getpid():
            self._reset()
        with self._cond:
            if self._closing:
                raise BackendUnavailableError(self._backend, "the batch gatherer is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._pending.append(submission)
            if len(self._pending) == 1:
                self._cond.notify()

    def _run(self) -> None:
        while (taken := self._gather()) is not None:
            self._flush_all(taken)

    def _gather(self) -> list[_Submission[T]] | None:
        with self._cond:
            while True:
                while not self._pending:
                    if self._closing:
                        return None
                    self._cond.wait()
                # Pace the flushes: what arrives meanwhile joins this batch instead of making
                # another insert (ClickHouse wants few, large inserts).
                left = self._last_start + self._min_interval - time.monotonic()
                if left <= 0 or self._closing:
                    break
                self._cond.wait(left)
            taken: list[_Submission[T]] = []
            count = 0
            while self._pending and (
                not taken or count + len(self._pending[0].items) <= self._max_items
            ):
                submission = self._pending.popleft()
                taken.append(submission)
                count += len(submission.items)
            self._last_start = time.monotonic()
            return taken

    def _flush_all(self, taken: list[_Submission[T]]) -> None:
        settlement = BatchSettlement(taken, event_ids=event_ids_by_item(self._event_id))
        while (group := settlement.next()) is not None:
            for submission, error in settlement.record(group, self._flush_once(group)):
                submission.error = error
                submission.done.set()

    def _flush_once(self, group: list[_Submission[T]]) -> BaseException | None:
        batch = [item for submission in group for item in submission.items]
        error: BaseException | None = None
        try:
            self._flush(batch)
        except Exception as exc:
            log.warning(
                "%s: flush of %d items failed (%s): %r",
                self._name,
                len(batch),
                failure_of(exc).value,
                exc,
            )
            error = exc
        self.stats.flushes += 1
        self.stats.items += len(batch)
        self.stats.failures += error is not None
        self.stats.largest = max(self.stats.largest, len(batch))
        return error
