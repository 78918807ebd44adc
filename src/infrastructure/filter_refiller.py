"""Each worker process keeps the stored-fingerprint filter usable: a refill check every 30 s.

Any number of workers may run it: the filter's lock lets one refill at a time, and a check
on a complete filter is two reads. Errors are logged and retried on the next tick, since
until the refill succeeds the worker only loses the filter's savings, never correctness.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 30.0


class FilterRefiller:
    def __init__(self, job: Callable[[], object], *, interval: float = INTERVAL_SECONDS) -> None:
        self._job = job
        self._interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="filter-refiller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._job()
            except Exception:
                log.exception("stored filter refill failed; retrying in %.0f s", self._interval)
            self._stopping.wait(self._interval)
