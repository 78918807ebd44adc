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
    ran_at = datetime.now(UTC).replace(microsecond=0)
    ran = threading.Event()
    scheduler = RetentionScheduler(
        schedule=crontab_of("0 0 * * 1"),
        job=ran.set,
        state_file=state,
        clock=lambda: ran_at,
        max_sleep=0.1,
    )
    scheduler.start()
    try:
        assert ran.wait(30)
    finally:
        scheduler.stop()
    assert scheduler.last_run() == ran_at


def test_a_first_start_waits_for_the_schedule_instead_of_running_at_once(tmp_path: Path) -> None:
    state = tmp_path / "retention-schedule"
    ran = threading.Event()
    reads: list[datetime] = []
    first_look_done = threading.Event()

    def now() -> datetime:
        # A look reads the time once if not due, twice if due and then runs the job: by the
        # third read the first look has decided, and run the job if it ever would.
        reads.append(datetime.now(UTC))
        if len(reads) >= 3:
            first_look_done.set()
        return reads[-1]

    scheduler = RetentionScheduler(
        schedule=crontab_of("0 0 1 1 *", nowfun=now), job=ran.set, state_file=state, max_sleep=0.1
    )
    scheduler.start()
    try:
        assert first_look_done.wait(30)
    finally:
        scheduler.stop()
    assert not ran.is_set()
    assert state.exists()


def test_a_failing_job_does_not_stop_the_scheduler(tmp_path: Path) -> None:
    state = tmp_path / "retention-schedule"
    week_ago = datetime.now(UTC) - timedelta(days=8)
    state.write_text(week_ago.isoformat())
    tries: list[int] = []
    ran_again = threading.Event()

    def fails_once() -> None:
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("clickhouse down")
        ran_again.set()

    # A clock stuck a week back keeps the weekly schedule due, so a live loop runs it again.
    scheduler = RetentionScheduler(
        schedule=crontab_of("0 0 * * 1"),
        job=fails_once,
        state_file=state,
        clock=lambda: week_ago,
        max_sleep=0.1,
    )
    scheduler.start()
    try:
        assert ran_again.wait(30)
    finally:
        scheduler.stop()
    assert len(tries) >= 2
    assert not scheduler.running
