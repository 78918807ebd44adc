"""RunRetention: archive and purge together, never two runs at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dedup.application.archive_events import ArchiveEvents
from dedup.application.purge_fingerprints import PurgeFingerprints
from dedup.application.run_retention import RunRetention
from dedup.domain.archive import ArchivedTable

from tests.archive_fakes import FakeArchiver, FakeLock, FakePartitionStore
from tests.builders import an_event

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def retention(store: FakePartitionStore, lock: FakeLock) -> RunRetention:
    clock = lambda: NOW  # noqa: E731
    return RunRetention(
        archive=ArchiveEvents(
            store=store,
            archiver=FakeArchiver(),
            late=store,
            clock=clock,
            retention=timedelta(days=7),
        ),
        purge=PurgeFingerprints(store=store, clock=clock, window=timedelta(days=30)),
        lock=lock,
    )


def test_a_run_archives_old_events_and_purges_old_fingerprints_then_frees_the_lock() -> None:
    store, lock = FakePartitionStore(), FakeLock()
    store.add(an_event(received_at=NOW - timedelta(days=10)))
    store.add(an_event(received_at=NOW - timedelta(days=60)))

    report = retention(store, lock).execute()

    assert report is not None
    assert len(report.archived) == 2
    assert len(report.purged) == 1
    assert store.rows(ArchivedTable.EVENTS) == []
    assert len(store.rows(ArchivedTable.FINGERPRINTS)) == 1  # the 10-day-old one is in the window
    assert lock.held is False


def test_a_run_that_finds_the_lock_taken_does_nothing() -> None:
    store, lock = FakePartitionStore(), FakeLock(held_elsewhere=True)
    store.add(an_event(received_at=NOW - timedelta(days=10)))

    assert retention(store, lock).execute() is None
    assert len(store.rows(ArchivedTable.EVENTS)) == 1


def test_a_dry_run_needs_no_lock() -> None:
    store, lock = FakePartitionStore(), FakeLock(held_elsewhere=True)
    store.add(an_event(received_at=NOW - timedelta(days=10)))

    report = retention(store, lock).execute(dry_run=True)

    assert report is not None
    assert len(report.archived) == 1
    assert len(store.rows(ArchivedTable.EVENTS)) == 1
