"""The archive schedule: crontab fields as cron reads them, in UTC, state under the data dir."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from celery import Celery
from dedup.infrastructure.beat import beat_schedule, configure_beat, crontab_of
from dedup.infrastructure.settings import Settings


@pytest.fixture
def app() -> Celery:
    app = Celery("test", set_as_current=False)
    app.conf.update(timezone="UTC", enable_utc=True)
    return app


def test_the_five_fields_are_minute_hour_day_month_weekday(app: Celery) -> None:
    schedule = crontab_of("15 3 1-7 2,8 1", app=app)

    assert schedule.minute == {15}
    assert schedule.hour == {3}
    assert schedule.day_of_month == set(range(1, 8))
    assert schedule.month_of_year == {2, 8}
    assert schedule.day_of_week == {1}


def test_the_default_runs_on_monday_at_midnight_utc(app: Celery) -> None:
    sunday_evening = datetime(2026, 11, 29, 23, 59, tzinfo=UTC)
    monday = datetime(2026, 11, 30, 0, 0, 30, tzinfo=UTC)
    last_week = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)

    before = crontab_of("0 0 * * 1", app=app, nowfun=lambda: sunday_evening)
    due = crontab_of("0 0 * * 1", app=app, nowfun=lambda: monday)

    assert before.is_due(last_week).is_due is False
    assert due.is_due(last_week).is_due is True


@pytest.mark.parametrize("bad", ["0 0 * *", "0 0 * * 1 2", "61 0 * * *", "0 25 * * *", ""])
def test_a_bad_expression_is_refused_with_the_expression_named(bad: str) -> None:
    with pytest.raises(ValueError, match="crontab"):
        crontab_of(bad)


def test_the_schedule_sends_archive_run(app: Celery) -> None:
    schedule = beat_schedule("0 0 * * 1", app=app)

    assert schedule["archive"]["task"] == "archive.run"
    assert schedule["archive"]["schedule"] == crontab_of("0 0 * * 1", app=app)


def test_beat_keeps_its_state_in_a_file_under_the_data_dir_and_runs_in_utc(
    tmp_path: Path,
) -> None:
    app = Celery("test", set_as_current=False)
    settings = Settings(data_dir=tmp_path / "var", archive_schedule="30 2 * * *")

    path = configure_beat(app, settings)

    assert path.parent == tmp_path / "var"
    assert path.parent.is_dir()
    assert app.conf.beat_schedule_filename == str(path)
    assert app.conf.timezone == "UTC"
    assert app.conf.beat_schedule["archive"]["schedule"].hour == {2}
