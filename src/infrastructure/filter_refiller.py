"""Each worker process keeps the stored-fingerprint filter usable: a refill check every 30 s.

Any number of workers may run it: the filter's lock lets one refill at a time, and a check
on a complete filter is two reads. Errors are logged and retried on the next tick, since
until the refill succeeds the worker only loses the filter's savings, never correctness.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from dedup.infrastructure.background import Background

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 30.0


class FilterRefiller(Background):
    def __init__(self, job: Callable[[], object], *, interval: float = INTERVAL_SECONDS) -> None:
        super().__init__("filter-refiller")
        self._job = job
        self._interval = interval

    def loop(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                self._job()
            except Exception:
                log.exception("stored filter refill failed; retrying in %.0f s", self._interval)
            stopping.wait(self._interval)
