"""PurgeFingerprints: whole weeks outside the dedup window go, the rest of the window stays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dedup.application.purge_fingerprints import PurgeFingerprints
from dedup.domain.archive import ArchivedTable

from tests.archive_fakes import FakePartitionStore
from tests.builders import an_event

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # a Sunday
FINGERPRINTS = ArchivedTable.FINGERPRINTS


def purge(store: FakePartitionStore) -> PurgeFingerprints:
    return PurgeFingerprints(store=store, clock=lambda: NOW, window=timedelta(days=30))


def test_only_weeks_wholly_older_than_the_window_are_dropped() -> None:
    store = FakePartitionStore()
    # The window starts 2026-10-30 12:00: the week of Oct 19 ends Oct 26 (gone); the week of
    # Oct 26 ends Nov 2, inside the window (kept, though it began before the window did).
    gone = an_event(received_at=datetime(2026, 10, 20, 8, tzinfo=UTC))
    straddling = an_event(received_at=datetime(2026, 10, 27, 8, tzinfo=UTC))
    recent = an_event(received_at=datetime(2026, 11, 20, 8, tzinfo=UTC))
    store.add(gone, straddling, recent)

    steps = purge(store).execute()

    assert [s.partition.start for s in steps] == [date(2026, 10, 19)]
    assert store.rows(FINGERPRINTS) == [straddling, recent]


def test_purging_fingerprints_leaves_events_alone() -> None:
    store = FakePartitionStore()
    old = an_event(received_at=NOW - timedelta(days=60))
    store.add(old)

    purge(store).execute()

    assert store.rows(FINGERPRINTS) == []
    assert store.rows(ArchivedTable.EVENTS) == [old]


def test_a_dry_run_drops_nothing() -> None:
    store = FakePartitionStore()
    store.add(an_event(received_at=NOW - timedelta(days=60)))

    steps = purge(store).execute(dry_run=True)

    assert len(steps) == 1
    assert len(store.rows(FINGERPRINTS)) == 1
