"""The `memory://` broker: the API process deduplicates its own events on a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from attrs import frozen
from dedup.adapters.metrics import record_batch, record_publish_failure, record_retry
from dedup.application.batch_settlement import BatchSettlement, failure_of
from dedup.application.ports import Queue
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event, EventId
from dedup.domain.outcome import BatchOutcome

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[Event]], object]


@frozen
class _Chunk:
    """The events of one put(), and how to answer it on the caller's loop."""

    events: Sequence[Event]
    arrived: float
    loop: asyncio.AbstractEventLoop
    answer: asyncio.Future[None]


class MemoryQueue(Queue):
    """An in-process queue whose put() returns once its events are stored: group commit.

    Each put() waits while one thread gathers the waiting puts (whole, up to max_batch events,
    or what came within max_wait_seconds) into one handler(batch) call. A BackendUnavailableError
    retries the same batch after each of retry_delays; when they run out, every put of that
    batch raises BackendUnavailableError: the API answers 503 and the client retries, which
    deduplication makes safe. Any other error is settled by BatchSettlement, without retrying:
    a PoisonEventError fails only the puts holding its events (422), the others are handed over
    again without them; anything else reaches, as it is (500), only the puts that fail when
    handed over alone. So "ok" means stored; only events not yet answered are lost if the
    process dies. max_pending bounds what waits, so an outage turns into refused puts instead
    of unbounded memory, and timeout_seconds bounds how long one put waits.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        max_batch: int = 5000,
        max_wait_seconds: float = 0.002,
        retry_delays: Sequence[float] = (0.05, 0.2, 0.5, 1.0),
        timeout_seconds: float = 10.0,
        max_pending: int = 100_000,
    ) -> None:
        if max_batch <= 0 or max_pending <= 0 or timeout_seconds <= 0 or max_wait_seconds < 0:
            raise ValueError("max_batch, max_pending and timeout must be positive, max_wait not <0")
        self._handler = handler
        self._max_batch = max_batch
        self._max_wait = max_wait_seconds
        self._retry_delays = tuple(retry_delays)
        self._timeout = timeout_seconds
        self._max_pending = max_pending
        self._cond = threading.Condition()
        self._chunks: deque[_Chunk] = deque()
        self._buffered = 0  # events in _chunks
        self._in_flight = 0  # events of the batch in the handler's hands
        self._stopping = False
        self._abort = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the delivery thread; puts made before this wait for it."""
        with self._cond:
            if self._thread is not None or self._stopping:
                raise RuntimeError("a MemoryQueue starts once")
            self._thread = threading.Thread(target=self._run, name="memory-queue", daemon=True)
            self._thread.start()

    async def put(self, events: Sequence[Event]) -> None:
        """Return once the handler has stored (or recorded as duplicates) every event."""
        if not events:
            return
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if self._stopping:
                raise BackendUnavailableError("broker", "the in-process queue is stopped")
            if self._buffered + self._in_flight + len(events) > self._max_pending:
                raise BackendUnavailableError("broker", "the in-process queue is full")
            self._chunks.append(_Chunk(list(events), time.monotonic(), loop, answer))
            self._buffered += len(events)
            self._cond.notify_all()
        try:
            await asyncio.wait_for(answer, self._timeout)
        except TimeoutError:
            # The batch may still be stored later; the client's retry is then a duplicate.
            raise BackendUnavailableError(
                "broker", f"events not stored within {self._timeout}s"
            ) from None

    def stop(self, timeout: float = 30.0) -> bool:
        """Refuse new puts, finish the pending ones, stop; True if every one was answered."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                self._abort.set()  # cuts retry sleeps short; a handler call in progress finishes
                with self._cond:
                    self._cond.notify_all()
                thread.join(max(self._max_wait, 1.0))
        with self._cond:
            # Never started, or stopped before the end: nothing will store these, say so now.
            refused = self._refuse_buffered()
        if refused:
            log.warning("memory queue stopped with %d events unstored; their puts failed", refused)
        return refused == 0 and (thread is None or not thread.is_alive())

    def ping(self) -> None:
        """Ready while the delivery thread runs and the queue accepts puts."""
        with self._cond:
            running = self._thread is not None and self._thread.is_alive()
            if self._stopping or not running:
                raise BackendUnavailableError("broker", "the in-process queue is not running")

    def drain(self, timeout: float) -> bool:
        """Wait until no event is waiting or being handled; False if the timeout came first."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._buffered == 0 and self._in_flight == 0, timeout=timeout
            )

    def depth(self) -> dict[str, int]:
        """Events put and not yet answered, the batch in the handler's hands included.

        BackendUnavailableError once stopping, or if the delivery thread died: as ping() says
        then, and as CeleryQueue.depth() does when it cannot reach the broker.
        """
        with self._cond:
            died = self._thread is not None and not self._thread.is_alive()
            if self._stopping or died:
                raise BackendUnavailableError("broker", "the in-process queue is not running")
            return {"events": self._buffered + self._in_flight}

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            settlement = BatchSettlement(batch, event_ids=_event_ids)
            while (group := settlement.next()) is not None:
                settled = settlement.record(group, self._deliver(group))
                with self._cond:  # no longer pending by the time anyone hears the answer
                    self._in_flight -= sum(len(chunk.events) for chunk, _failure in settled)
                    self._cond.notify_all()
                for chunk, failure in settled:
                    _answer(chunk, failure)

    def _next_batch(self) -> list[_Chunk] | None:
        with self._cond:
            while True:
                if self._abort.is_set():
                    return None
                if not self._chunks:
                    if self._stopping:
                        return None
                    self._cond.wait()
                    continue
                if self._buffered >= self._max_batch or self._stopping:
                    break
                left = self._chunks[0].arrived + self._max_wait - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            # Whole chunks only, so each put is answered by one handler call; at least one.
            batch = [self._chunks.popleft()]
            size = len(batch[0].events)
            while self._chunks and size + len(self._chunks[0].events) <= self._max_batch:
                batch.append(self._chunks.popleft())
                size += len(batch[-1].events)
            self._buffered -= size
            self._in_flight = size
            return batch

    def _deliver(self, chunks: list[_Chunk]) -> BaseException | None:
        """Hand the chunks' events to the handler, retried while a backend is away; its error."""
        events = [event for chunk in chunks for event in chunk.events]
        for delay in (*self._retry_delays, None):
            if self._abort.is_set():
                return BackendUnavailableError("broker", "the in-process queue stopped")
            started = time.perf_counter()
            try:
                result = self._handler(events)
            except BackendUnavailableError as exc:
                if delay is None or self._abort.wait(delay):
                    log.error("batch of %d events not stored, puts refused: %s", len(events), exc)
                    record_publish_failure()
                    refused = BackendUnavailableError("broker", f"events not stored: {exc}")
                    refused.__cause__ = exc
                    return refused
                log.warning("%s; retrying a batch of %d in %ss", exc, len(events), delay)
                record_retry()
            except Exception as exc:
                # Poison or a bug: the same events would fail the same way again.
                kind = failure_of(exc).value
                log.warning("batch of %d events not stored (%s): %r", len(events), kind, exc)
                record_publish_failure()
                return exc
            else:
                if isinstance(result, BatchOutcome):
                    record_batch(result, time.perf_counter() - started)
                return None
        raise AssertionError("not reached: the last delay is None")

    def _refuse_buffered(self) -> int:
        refused = 0
        while self._chunks:
            chunk = self._chunks.popleft()
            refused += len(chunk.events)
            _answer(chunk, BackendUnavailableError("broker", "the in-process queue stopped"))
        self._buffered = 0
        self._cond.notify_all()
        return refused


def _event_ids(chunk: _Chunk) -> list[EventId]:
    return [event.event_id for event in chunk.events]


def _answer(chunk: _Chunk, failure: BaseException | None) -> None:
    """Settle one put's future from this thread; a caller gone (timed out, loop closed) is fine."""
    with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits
        chunk.loop.call_soon_threadsafe(_settle, chunk.answer, failure)


def _settle(answer: asyncio.Future[None], failure: BaseException | None) -> None:
    if answer.done():
        return
    if failure is None:
        answer.set_result(None)
    else:
        answer.set_exception(failure)
