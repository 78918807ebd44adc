"""`archive.run`: a thin task over RunRetention, registered under its explicit name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from celery import Celery
from dedup.adapters.inbound.archive_tasks import TASK_NAME, register_archive_task
from dedup.application.archive_events import ArchiveEvents
from dedup.application.purge_fingerprints import PurgeFingerprints
from dedup.application.run_retention import RunRetention
from dedup.domain.archive import ArchivedTable

from tests.archive_fakes import FakeArchiver, FakeLock, FakePartitionStore
from tests.builders import an_event

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def retention(store: FakePartitionStore, lock: FakeLock) -> RunRetention:
    return RunRetention(
        archive=ArchiveEvents(
            store=store,
            archiver=FakeArchiver(),
            late=store,
            clock=lambda: NOW,
            retention=timedelta(days=7),
        ),
        purge=PurgeFingerprints(store=store, clock=lambda: NOW, window=timedelta(days=30)),
        lock=lock,
    )


def test_the_task_is_named_archive_run_and_archives_when_run() -> None:
    app = Celery("test", set_as_current=False)
    store = FakePartitionStore()
    store.add(an_event(received_at=NOW - timedelta(days=9)))

    task = register_archive_task(app, retention=lambda: retention(store, FakeLock()))
    task()  # runs the body in this process; no broker involved

    assert TASK_NAME == "archive.run"
    assert TASK_NAME in app.tasks
    assert store.rows(ArchivedTable.EVENTS) == []


def test_a_run_that_finds_another_running_leaves_everything_alone() -> None:
    app = Celery("test", set_as_current=False)
    store = FakePartitionStore()
    store.add(an_event(received_at=NOW - timedelta(days=9)))

    task = register_archive_task(
        app, retention=lambda: retention(store, FakeLock(held_elsewhere=True))
    )
    task()

    assert len(store.rows(ArchivedTable.EVENTS)) == 1
