"""The worker's circuit breaker: while a backend is away, its tasks wait here, then try together.

A failed flush opens the breaker; every task thread holding a message then waits for one
shared next attempt instead of retrying on its own, so the threads come back at the same
moment and their next try is one batch: a probe of the backend. Each failed attempt doubles
the wait up to a cap, with jitter so that several workers do not probe in step. A flush
that succeeds closes it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable


class BackendBreaker:
    """Shared by a worker's task threads: wait() until the next attempt after a failure."""

    def __init__(
        self,
        *,
        base_seconds: float = 1.0,
        cap_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if base_seconds <= 0 or cap_seconds < base_seconds:
            raise ValueError("base_seconds must be positive and cap_seconds at least base")
        self._base = base_seconds
        self._cap = cap_seconds
        self._clock = clock
        self._jitter = jitter
        self._changed = threading.Condition()
        self._delay = 0.0  # 0 while closed
        self._next_attempt = 0.0
        self.opened = 0  # how many outages it has seen, for logs and tests

    @property
    def is_open(self) -> bool:
        with self._changed:
            return self._delay > 0

    def due_in(self) -> float:
        """Seconds until the next attempt; 0 when it is due, or the breaker is closed."""
        with self._changed:
            return max(0.0, self._next_attempt - self._clock()) if self._delay > 0 else 0.0

    def failed(self) -> bool:
        """A flush failed for want of a backend; True when this failure opened the breaker.

        The threads of one failed flush all report it: only a failure of an attempt made at
        or after the scheduled one moves the schedule on.
        """
        with self._changed:
            now = self._clock()
            opened = self._delay == 0
            if opened:
                self._delay = self._base
                self.opened += 1
            elif now >= self._next_attempt:
                self._delay = min(self._cap, self._delay * 2)
            else:
                return False
            # Between half and all of the delay: spread, yet never longer than the cap.
            self._next_attempt = now + self._delay * (0.5 + self._jitter() / 2)
            return opened

    def succeeded(self) -> bool:
        """A flush succeeded; True when this closed an open breaker."""
        with self._changed:
            was_open = self._delay > 0
            self._delay = 0.0
            self._next_attempt = 0.0
            self._changed.notify_all()
            return was_open

    def wait(self, *, at_most: float) -> None:
        """Block until the next attempt is due (or the breaker closed), at most `at_most` s."""
        deadline = self._clock() + max(0.0, at_most)
        with self._changed:
            while self._delay > 0:
                now = self._clock()
                until = min(self._next_attempt, deadline)
                if now >= until:
                    return
                self._changed.wait(until - now)
