"""Whether this process finds Redis away; the cache and the filter of one process share it.

While Redis is away their calls fail at once, with no timeout per batch, and the use case
goes on through ClickHouse alone. One call every `probe_every` seconds goes through to find
out whether Redis is back. Going away and coming back each log one line and set the gauge
dedup_degraded{backend="redis"}.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from dedup.adapters.metrics import record_degraded
from dedup.domain.errors import BackendUnavailableError

log = logging.getLogger(__name__)

T = TypeVar("T")

PROBE_SECONDS = 5.0


class RedisOutage:
    """Runs the Redis calls of the batch path, and knows since when they have been failing."""

    def __init__(
        self, *, probe_every: float = PROBE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._probe_every = probe_every
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_probe = 0.0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def call(self, run: Callable[[], T]) -> T:
        """run(), unless Redis is away and no probe is due: then BackendUnavailableError."""
        with self._lock:
            if self._down_since is not None:
                now = self._clock()
                if now < self._next_probe:
                    raise BackendUnavailableError("redis", "degraded: not asked until it answers")
                self._next_probe = now + self._probe_every
        try:
            result = run()
        except BackendUnavailableError as exc:
            self._failed(exc)
            raise
        self._answered()
        return result

    def _failed(self, exc: BackendUnavailableError) -> None:
        with self._lock:
            if self._down_since is not None:
                return
            now = self._clock()
            self._down_since, self._next_probe = now, now + self._probe_every
        record_degraded("redis", degraded=True)
        log.warning(
            "redis unavailable (%s): degraded, storing through ClickHouse alone;"
            " asking redis again every %g s",
            exc.detail or exc,
            self._probe_every,
        )

    def _answered(self) -> None:
        with self._lock:
            if self._down_since is None:
                return
            away, self._down_since = self._clock() - self._down_since, None
        record_degraded("redis", degraded=False)
        log.warning(
            "redis answers again after %.1f s: claims, marks and the stored filter are used again",
            away,
        )
