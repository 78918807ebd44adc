"""The `memory://` broker: the API process deduplicates its own events on a background thread."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from adapters.metrics import record_batch, record_dead_letter, record_retry
from application.ports import Queue
from domain.errors import BackendUnavailableError
from domain.event import Event
from domain.outcome import BatchOutcome

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[Event]], object]


class MemoryQueue(Queue):
    """An in-process queue with the worker's group commit and retry policy.

    put() only appends to a buffer; one thread gathers up to max_batch events (or waits at most
    max_wait_seconds for more) and calls handler(batch). A BackendUnavailableError retries the
    same batch after each of retry_delays, then moves it to dead_letters; any other error
    dead-letters it at once. No batch is ever dropped, and replay_dead() puts them back.

    Not durable: what is buffered or dead-lettered is lost if the process dies. That is the
    embedded profile's trade-off; a clean stop() drains the buffer first. max_pending bounds
    the buffer, so a long outage turns into refused puts (503) instead of unbounded memory.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        max_batch: int = 5000,
        max_wait_seconds: float = 0.2,
        retry_delays: Sequence[float] = (0.1, 0.5, 2, 5, 10),
        max_pending: int = 1_000_000,
    ) -> None:
        if max_batch <= 0 or max_pending <= 0 or max_wait_seconds < 0:
            raise ValueError("max_batch and max_pending must be positive, max_wait non-negative")
        self._handler = handler
        self._max_batch = max_batch
        self._max_wait = max_wait_seconds
        self._retry_delays = tuple(retry_delays)
        self._max_pending = max_pending
        self._cond = threading.Condition()
        # One chunk per put(), stamped with its arrival, so the wait is measured from the
        # oldest buffered event and a put costs one append whatever its size.
        self._chunks: deque[tuple[float, list[Event]]] = deque()
        self._buffered = 0
        self._in_flight = 0
        self._dead: list[tuple[Event, ...]] = []
        self._stopping = False
        self._abort = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the delivery thread; events put before this wait in the buffer."""
        with self._cond:
            if self._thread is not None or self._stopping:
                raise RuntimeError("a MemoryQueue starts once")
            self._thread = threading.Thread(target=self._run, name="memory-queue", daemon=True)
            self._thread.start()

    async def put(self, events: Sequence[Event]) -> None:
        if not events:
            return
        with self._cond:
            if self._stopping:
                raise BackendUnavailableError("broker", "the in-process queue is stopped")
            if self._buffered + len(events) > self._max_pending:
                raise BackendUnavailableError("broker", "the in-process queue is full")
            self._chunks.append((time.monotonic(), list(events)))
            self._buffered += len(events)
            self._cond.notify_all()

    def stop(self, timeout: float = 30.0) -> bool:
        """Refuse new events, deliver the buffered ones, stop; True if all were delivered.

        What is still undelivered after the timeout goes to dead_letters, never nowhere.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is None:
            with self._cond:  # never started: nothing will deliver what is buffered
                undelivered = self._buffered
                self._bury_buffer()
            return undelivered == 0
        thread.join(timeout)
        if thread.is_alive():
            self._abort.set()  # cuts retry sleeps short; a handler call in progress finishes
            with self._cond:
                self._cond.notify_all()
            thread.join(max(self._max_wait, 1.0))
            log.warning("memory queue stopped before it was drained; see dead_letters")
            return False
        return True

    def ping(self) -> None:
        """Ready while the delivery thread runs and the queue accepts events."""
        with self._cond:
            running = self._thread is not None and self._thread.is_alive()
            if self._stopping or not running:
                raise BackendUnavailableError("broker", "the in-process queue is not running")

    def drain(self, timeout: float) -> bool:
        """Wait until no event is buffered or being handled; False if the timeout came first."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._buffered == 0 and self._in_flight == 0, timeout=timeout
            )

    def depth(self) -> dict[str, int]:
        """Events waiting now: buffered (not counting the batch in hand), and dead-lettered."""
        with self._cond:
            return {
                "events": self._buffered,
                "dead_letters": sum(len(batch) for batch in self._dead),
            }

    @property
    def dead_letters(self) -> list[tuple[Event, ...]]:
        """The batches that could not be delivered, oldest first."""
        with self._cond:
            return list(self._dead)

    def replay_dead(self) -> int:
        """Queue the dead-lettered batches again; return how many events went back."""
        with self._cond:
            if self._stopping:
                raise BackendUnavailableError("broker", "the in-process queue is stopped")
            dead, self._dead = self._dead, []
            now = time.monotonic()
            for batch in dead:
                self._chunks.append((now, list(batch)))
                self._buffered += len(batch)
            self._cond.notify_all()
            return sum(len(batch) for batch in dead)

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            delivered = self._deliver(batch)
            with self._cond:
                if not delivered:
                    self._dead.append(tuple(batch))
                self._in_flight = 0
                self._cond.notify_all()

    def _next_batch(self) -> list[Event] | None:
        with self._cond:
            while True:
                if self._abort.is_set():
                    self._bury_buffer()
                    return None
                if self._buffered == 0:
                    if self._stopping:
                        return None
                    self._cond.wait()
                    continue
                if self._buffered >= self._max_batch or self._stopping:
                    break
                left = self._chunks[0][0] + self._max_wait - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch = self._take()
            self._in_flight = len(batch)
            return batch

    def _take(self) -> list[Event]:
        batch: list[Event] = []
        while self._chunks and len(batch) < self._max_batch:
            arrived, events = self._chunks.popleft()
            room = self._max_batch - len(batch)
            if len(events) > room:
                # Split a chunk larger than the batch; its rest keeps its place and its stamp.
                self._chunks.appendleft((arrived, events[room:]))
                events = events[:room]
            batch.extend(events)
        self._buffered -= len(batch)
        return batch

    def _deliver(self, batch: list[Event]) -> bool:
        for delay in (*self._retry_delays, None):
            started = time.perf_counter()
            try:
                result = self._handler(batch)
            except BackendUnavailableError as exc:
                if delay is None or self._abort.wait(delay):
                    log.error("batch of %d events dead-lettered: %s", len(batch), exc)
                    record_dead_letter()
                    return False
                log.warning("%s; retrying a batch of %d in %ss", exc, len(batch), delay)
                record_retry()
            except Exception:
                log.exception("batch of %d events dead-lettered", len(batch))
                record_dead_letter()
                return False
            else:
                if isinstance(result, BatchOutcome):
                    record_batch(result, time.perf_counter() - started)
                return True
        return False  # not reached: the last delay is None

    def _bury_buffer(self) -> None:
        while self._chunks:
            self._dead.append(tuple(self._chunks.popleft()[1]))
            record_dead_letter()
        self._buffered = 0
