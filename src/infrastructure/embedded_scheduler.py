"""The embedded profile's beat: retention on DEDUP_ARCHIVE_SCHEDULE inside the serving process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from celery.schedules import crontab
from dedup.infrastructure.background import Background
from dedup.infrastructure.clock import utc_now

log = logging.getLogger(__name__)


class RetentionScheduler(Background):
    """Runs `job` whenever the crontab is due; the last run is kept in a file across restarts."""

    def __init__(
        self,
        *,
        schedule: crontab,
        job: Callable[[], object],
        state_file: Path,
        clock: Callable[[], datetime] = utc_now,
        max_sleep: float = 60.0,
    ) -> None:
        super().__init__("retention-scheduler")
        self._schedule = schedule
        self._job = job
        self._state = state_file
        self._clock = clock
        self._max_sleep = max_sleep

    def last_run(self) -> datetime:
        """When the job last ran; a first start counts as a run, so it waits for the schedule."""
        try:
            return datetime.fromisoformat(self._state.read_text().strip())
        except (OSError, ValueError):
            now = self._clock()
            self._remember(now)
            return now

    def _remember(self, when: datetime) -> None:
        self._state.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._state.with_suffix(".tmp")
        temporary.write_text(when.isoformat())
        temporary.replace(self._state)

    def loop(self, stopping: threading.Event) -> None:
        last = self.last_run()
        while not stopping.is_set():
            due, wait = self._schedule.is_due(last)
            if due:
                last = self._clock()
                self._remember(last)  # before the job: a crash mid-run must not loop on restart
                try:
                    self._job()
                except Exception:  # the job is idempotent; the next schedule finishes it
                    log.exception("scheduled retention run failed")
            stopping.wait(min(max(float(wait), 0.1), self._max_sleep))
