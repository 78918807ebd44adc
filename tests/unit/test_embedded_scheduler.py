"""The embedded scheduler runs retention when the crontab is due, and remembers it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dedup.infrastructure.beat import crontab_of
from dedup.infrastructure.embedded_scheduler import RetentionScheduler


def test_an_overdue_run_happens_and_is_remembered(tmp_path: Path) -> None:
    state = tmp_path / "retention-schedule"
    state.write_text((datetime.now(UTC) - timedelta(days=8)).isoformat())
    ran = threading.Event()
    scheduler = RetentionScheduler(
        schedule=crontab_of("0 0 * * 1"), job=ran.set, state_file=state, max_sleep=0.1
    )
    scheduler.start()
    try:
        assert ran.wait(5)
    finally:
        scheduler.stop()
    assert datetime.now(UTC) - scheduler.last_run() < timedelta(seconds=10)


def test_a_first_start_waits_for_the_schedule_instead_of_running_at_once(tmp_path: Path) -> None:
    state = tmp_path / "retention-schedule"
    ran = threading.Event()
    scheduler = RetentionScheduler(
        schedule=crontab_of("0 0 1 1 *"), job=ran.set, state_file=state, max_sleep=0.1
    )
    scheduler.start()
    try:
        assert not ran.wait(0.5)
    finally:
        scheduler.stop()
    assert state.exists()


def test_a_failing_job_does_not_stop_the_scheduler(tmp_path: Path) -> None:
    state = tmp_path / "retention-schedule"
    state.write_text((datetime.now(UTC) - timedelta(days=8)).isoformat())
    calls: list[int] = []

    def job() -> None:
        calls.append(1)
        raise RuntimeError("clickhouse down")

    scheduler = RetentionScheduler(
        schedule=crontab_of("* * * * *"), job=job, state_file=state, max_sleep=0.1
    )
    scheduler.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=5)
        while not calls and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
    finally:
        scheduler.stop()
    assert calls
    assert not scheduler.running
