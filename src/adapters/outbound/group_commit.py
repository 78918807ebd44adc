"""Group commit: many coroutines' items go out in one blocking flush, off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from attrs import define

from domain.errors import BackendUnavailableError

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
    loop: asyncio.AbstractEventLoop
    arrived: float


class GroupCommitter(Generic[T]):
    """Await submit(items) from any event loop; one thread flushes what is pending as one batch.

    The thread takes every pending submission (whole, up to max_items, at least one) once the
    oldest has waited max_wait_seconds or max_items are pending, calls flush(batch), and then
    settles every submission of the batch: success, or BackendUnavailableError(backend) when
    flush raised. A submission not settled within timeout_seconds raises it too, so a caller
    never hangs on a stuck backend and never hears "done" for items that were not flushed.
    """

    def __init__(
        self,
        flush: Callable[[list[T]], None],
        *,
        backend: str,
        max_items: int = 1000,
        max_wait_seconds: float = 0.003,
        timeout_seconds: float = 5.0,
        name: str = "group-commit",
        flushers: int = 1,
    ) -> None:
        if max_items <= 0 or max_wait_seconds < 0 or timeout_seconds <= 0 or flushers <= 0:
            raise ValueError("max_items and timeout_seconds must be positive, max_wait >= 0")
        self._flush = flush
        self._backend = backend
        self._max_items = max_items
        self._max_wait = max_wait_seconds
        self._timeout = timeout_seconds
        self._name = name
        # Several flush threads keep several batches in flight: a flush mostly waits (for a
        # broker's confirm), so one thread alone would make every batch wait for the last.
        self._flushers = flushers
        self.stats = CommitStats()
        self._reset()

    def _reset(self) -> None:
        # Also run in a forked child: the parent's thread and buffer did not come along.
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._pending: deque[_Entry[T]] = deque()
        self._pending_items = 0
        self._closing = False
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the flush thread now rather than on the first submit."""
        with self._cond:
            self._start_locked()

    async def submit(self, items: Sequence[T]) -> None:
        """Return once flush() has taken these items; BackendUnavailableError if it did not."""
        if not items:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._enqueue(_Entry(list(items), future, loop, time.monotonic()))
        try:
            async with asyncio.timeout(self._timeout):
                await future
        except TimeoutError as exc:
            raise BackendUnavailableError(
                self._backend, f"not confirmed within {self._timeout}s"
            ) from exc

    def close(self, timeout: float | None = None) -> None:
        """Flush what is pending, then stop the thread; later submits fail."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            threads = list(self._threads)
        if self._pid == os.getpid():
            for thread in threads:
                thread.join(timeout)

    def _enqueue(self, entry: _Entry[T]) -> None:
        if self._pid != os.getpid():
            self._reset()
        with self._cond:
            if self._closing:
                raise BackendUnavailableError(self._backend, "the publisher is closed")
            self._start_locked()
            self._pending.append(entry)
            self._pending_items += len(entry.items)
            # Wake the thread only when it has something new to decide on.
            if len(self._pending) == 1 or self._pending_items >= self._max_items:
                self._cond.notify()

    def _start_locked(self) -> None:
        if not self._threads and not self._closing:
            for index in range(self._flushers):
                thread = threading.Thread(
                    target=self._run, name=f"{self._name}-{index}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _run(self) -> None:
        while (entries := self._gather()) is not None:
            live = [entry for entry in entries if not entry.future.done()]
            if not live:
                continue  # every caller gave up already: nothing to promise anyone
            batch = [item for entry in live for item in entry.items]
            error: Exception | None = None
            try:
                self._flush(batch)
            except Exception as exc:
                log.warning("%s: flush of %d items failed: %r", self._name, len(batch), exc)
                error = exc
            self.stats.batches += 1
            self.stats.items += len(batch)
            self.stats.failures += error is not None
            self._settle(live, error)

    def _gather(self) -> list[_Entry[T]] | None:
        with self._cond:
            while True:
                if not self._pending:
                    if self._closing:
                        return None
                    self._cond.wait()
                    continue
                if self._closing or self._pending_items >= self._max_items:
                    break
                left = self._pending[0].arrived + self._max_wait - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            taken: list[_Entry[T]] = []
            count = 0
            while self._pending and (
                not taken or count + len(self._pending[0].items) <= self._max_items
            ):
                entry = self._pending.popleft()
                taken.append(entry)
                count += len(entry.items)
            self._pending_items -= count
            return taken

    def _settle(self, entries: list[_Entry[T]], error: Exception | None) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for entry in entries:
            by_loop.setdefault(entry.loop, []).append(entry.future)
        for loop, futures in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits there now
                loop.call_soon_threadsafe(self._resolve, futures, error)

    def _resolve(self, futures: list[asyncio.Future[None]], error: Exception | None) -> None:
        for future in futures:
            if future.done():
                continue  # timed out or cancelled meanwhile
            if error is None:
                future.set_result(None)
            else:
                failure = BackendUnavailableError(self._backend, str(error) or repr(error))
                failure.__cause__ = error
                future.set_exception(failure)
