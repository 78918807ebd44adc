"""celery-beat for retention: `archive.run` on DEDUP_ARCHIVE_SCHEDULE, in UTC, state in a file."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from celery import Celery
from celery.schedules import crontab
from dedup.adapters.inbound.archive_tasks import TASK_NAME
from dedup.infrastructure.settings import Settings

SCHEDULE_FILE = "beat-schedule"
_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def crontab_of(
    expression: str, *, app: Celery | None = None, nowfun: Callable[[], datetime] | None = None
) -> crontab:
    """`minute hour day-of-month month day-of-week`, as crontab(5) reads them."""
    values = expression.split()
    if len(values) != len(_FIELDS):
        raise ValueError(
            f"expected five crontab fields (minute hour day month weekday), got {expression!r}"
        )
    fields = dict(zip(_FIELDS, values, strict=True))
    try:
        return crontab(**fields, app=app, nowfun=nowfun)
    except ValueError as exc:
        raise ValueError(f"bad crontab {expression!r}: {exc}") from None


def beat_schedule(expression: str, *, app: Celery | None = None) -> dict[str, dict[str, Any]]:
    return {
        "archive": {
            "task": TASK_NAME,
            "schedule": crontab_of(expression, app=app),
            "args": (),
        }
    }


def schedule_file(settings: Settings) -> Path:
    """Where beat remembers the last run, so a restart neither skips nor repeats one."""
    return settings.data_dir / SCHEDULE_FILE


def configure_beat(app: Celery, settings: Settings) -> Path:
    """Put the archive schedule on the app, in UTC; return the schedule state file."""
    path = schedule_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    app.conf.update(
        timezone="UTC",
        enable_utc=True,
        beat_schedule=beat_schedule(settings.archive_schedule, app=app),
        beat_schedule_filename=str(path),
    )
    return path


def run_beat(app: Celery, settings: Settings, *, loglevel: str = "INFO") -> None:
    """Run celery-beat until stopped; only one beat per deployment (the task takes a lock too)."""
    path = configure_beat(app, settings)
    app.Beat(schedule=str(path), loglevel=loglevel).run()
