"""The scheduler's edge: `archive.run`, one retention run (archive, then purge fingerprints)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import Celery, Task
from dedup.application.run_retention import RunRetention
from dedup.domain.archive import ArchiveAction, ArchiveError
from dedup.domain.errors import BackendUnavailableError

log = logging.getLogger(__name__)

TASK_NAME = "archive.run"


def register_archive_task(
    app: Celery,
    *,
    retention: Callable[[], RunRetention],
    max_retries: int = 3,
    retry_after_seconds: float = 600.0,
) -> Task[[], None]:
    """Register `archive.run`; `retention` is called in the worker process, after fork.

    Acked on receipt, not late: a run can outlast the broker's ack timeout, and losing one
    message costs nothing, since every run is idempotent and the next one finishes the job.
    """

    @app.task(
        name=TASK_NAME,
        bind=True,
        acks_late=False,
        max_retries=max_retries,
        ignore_result=True,
    )
    def run_archive(task: Task[[], None]) -> None:
        try:
            report = retention().execute()
        except (BackendUnavailableError, ArchiveError) as exc:
            log.warning("archive run stopped: %s; retrying in %.0fs", exc, retry_after_seconds)
            raise task.retry(exc=exc, countdown=retry_after_seconds) from exc
        if report is None:
            log.info("archive run skipped: another run holds the lock")
            return
        moved = [s for s in report.archived if s.action is not ArchiveAction.KEEP_CHANGED]
        log.info(
            "archive run: %d partitions (%d rows) archived, %d kept for the next run, "
            "%d fingerprint partitions purged",
            len(moved),
            sum(s.rows for s in moved),
            len(report.archived) - len(moved),
            len(report.purged),
        )

    return run_archive
