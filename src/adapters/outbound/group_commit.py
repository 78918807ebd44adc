"""Group commit on the event loop: concurrent submits share one awaited flush, several in flight."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from attrs import define
from dedup.application.batch_settlement import BatchSettlement, event_ids_by_item, failure_of
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import EventId

log = logging.getLogger(__name__)

T = TypeVar("T")


@define
class CommitStats:
    """What the committer did so far: flush calls, items flushed, flushes that failed."""

    batches: int = 0
    items: int = 0
    failures: int = 0


@define
class _Entry(Generic[T]):
    items: list[T]
    future: asyncio.Future[None]
    due: float  # loop time by which its batch must start: its arrival + max_wait_seconds
    deadline: float  # loop time at which its caller stops waiting: arrival + timeout_seconds


class GroupCommitter(Generic[T]):
    """Await submit(items) on one event loop; pending submissions go out in one awaited flush.

    A flush of the pending submissions (whole, up to max_items, at least one) starts once
    max_items are pending or the oldest has waited max_wait_seconds. Up to max_in_flight
    flushes run at once, so a batch need not wait for the one before it (a broker's confirm);
    beyond that, submissions wait for a free slot, so a stuck backend holds a bounded number of
    batches. A submit returns once a flush holding its items returned: never "done" for items
    that were not flushed. What it raises otherwise follows BatchSettlement: an error of the
    `unavailable` types (or none within timeout_seconds of the submit) is
    BackendUnavailableError(backend); a PoisonEventError fails only the submissions holding
    its events (named through `event_id`); anything else reaches, as it is, only the
    submissions that fail when flushed alone. A flush is cancelled when its oldest caller
    stops waiting, so none outlives the callers it serves.
    """

    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[None]],
        *,
        backend: str,
        max_items: int = 1000,
        max_wait_seconds: float = 0.003,
        timeout_seconds: float = 5.0,
        max_in_flight: int = 8,
        stats: CommitStats | None = None,
        unavailable: tuple[type[BaseException], ...] = (),
        event_id: Callable[[T], EventId] | None = None,
    ) -> None:
        if max_items <= 0 or max_wait_seconds < 0 or timeout_seconds <= 0 or max_in_flight <= 0:
            raise ValueError("max_items, timeout and max_in_flight must be positive, max_wait >= 0")
        self._flush = flush
        self._backend = backend
        self._max_items = max_items
        self._max_wait = max_wait_seconds
        self._timeout = timeout_seconds
        self._max_in_flight = max_in_flight
        self._unavailable = unavailable
        self._event_id = event_id
        # Shareable, so that committers on several event loops can count as one.
        self.stats = stats if stats is not None else CommitStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: deque[_Entry[T]] = deque()
        self._pending_items = 0
        self._flushing: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False

    async def submit(self, items: Sequence[T]) -> None:
        """Return once a flush took these items; BackendUnavailableError if none did in time."""
        if not items:
            return
        if self._closing:
            raise BackendUnavailableError(self._backend, "the publisher is closed")
        loop = self._bind()
        now = loop.time()
        entry = _Entry(list(items), loop.create_future(), now + self._max_wait, now + self._timeout)
        self._pending.append(entry)
        self._pending_items += len(entry.items)
        self._pump()
        try:
            async with asyncio.timeout_at(entry.deadline):
                await entry.future
        except TimeoutError as exc:
            # Its entry stays queued with a done future: the next flush skips it.
            raise BackendUnavailableError(
                self._backend, f"not confirmed within {self._timeout}s"
            ) from exc

    async def aclose(self) -> None:
        """Flush what is pending now and wait (at most timeout_seconds) for every flush."""
        self._closing = True
        loop = self._loop
        if loop is None:
            return
        deadline = loop.time() + self._timeout
        self._pump()
        # A finished flush starts the next pending batch (see _finished): wait for those too.
        while self._flushing and (left := deadline - loop.time()) > 0:
            await asyncio.wait(set(self._flushing), timeout=left)

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("an GroupCommitter serves the event loop it first ran on")
        return loop

    def _pump(self) -> None:
        """Start every batch that is due and has a slot; else wake up when the oldest is due."""
        loop = self._loop
        assert loop is not None  # only called once bound
        while self._pending and len(self._flushing) < self._max_in_flight:
            oldest = self._pending[0]
            if not (
                self._closing or self._pending_items >= self._max_items or oldest.due <= loop.time()
            ):
                # Entries arrive in order, so an earlier timer is never too late: it re-pumps.
                if self._timer is None:
                    self._timer = loop.call_at(oldest.due, self._on_timer)
                return
            self._start(self._take())

    def _on_timer(self) -> None:
        self._timer = None
        self._pump()

    def _take(self) -> list[_Entry[T]]:
        taken: list[_Entry[T]] = []
        count = 0
        while self._pending and (
            not taken or count + len(self._pending[0].items) <= self._max_items
        ):
            entry = self._pending.popleft()
            self._pending_items -= len(entry.items)
            if entry.future.done():
                continue  # its caller gave up (timed out or cancelled): nothing to promise
            taken.append(entry)
            count += len(entry.items)
        return taken

    def _start(self, entries: list[_Entry[T]]) -> None:
        if not entries:
            return
        assert self._loop is not None
        task = self._loop.create_task(self._commit(entries))
        self._flushing.add(task)
        task.add_done_callback(self._finished)

    async def _commit(self, entries: list[_Entry[T]]) -> None:
        """Flush the entries, again without those a failure settled, until each has its answer."""
        settlement = BatchSettlement(entries, event_ids=event_ids_by_item(self._event_id))
        try:
            while (group := settlement.next()) is not None:
                # A caller that gave up meanwhile is owed nothing: flush only for those waiting.
                waiting = [entry for entry in group if not entry.future.done()]
                error = await self._flush_once(waiting) if waiting else None
                for entry, failure in settlement.record(group, error):
                    if entry.future.done():
                        continue  # timed out or cancelled meanwhile
                    if failure is None:
                        entry.future.set_result(None)
                    else:
                        entry.future.set_exception(failure)
        except BaseException as exc:
            # Cancelled (the loop shuts down), or a bug of ours: nobody may take it for "done".
            for entry in entries:
                if not entry.future.done():
                    entry.future.set_exception(
                        BackendUnavailableError(self._backend, "the flush was cancelled")
                        if isinstance(exc, asyncio.CancelledError)
                        else exc
                    )
            raise

    async def _flush_once(self, entries: list[_Entry[T]]) -> BaseException | None:
        """Flush the entries' items by their oldest caller's deadline; what it raised, or None."""
        batch = [item for entry in entries for item in entry.items]
        error: BaseException | None = None
        # A confirm that comes after the caller gave up is of no use to anyone: stop waiting,
        # so that the flush (a publisher) can treat its channel as failed, and free the slot.
        deadline = asyncio.timeout_at(entries[0].deadline)  # entries are in arrival order
        try:
            async with deadline:
                await self._flush(batch)
        except Exception as exc:
            error = exc
            if deadline.expired() or isinstance(exc, self._unavailable):
                error = BackendUnavailableError(self._backend, str(exc) or repr(exc))
                error.__cause__ = exc
        self.stats.batches += 1
        self.stats.items += len(batch)
        self.stats.failures += error is not None
        if error is not None:
            kind = failure_of(error).value
            log.warning(
                "flush of %d items to the %s failed (%s): %r",
                len(batch),
                self._backend,
                kind,
                error,
            )
        return error

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._flushing.discard(task)
        self._pump()
