"""RestoreEvents: verify everything first, then put back only what is missing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dedup.application.archive_events import ArchiveEvents
from dedup.application.restore_events import RestoreEvents
from dedup.domain.archive import ArchivedTable, ArchiveError
from dedup.domain.event import Event
from dedup.domain.outcome import Duplicate

from tests.archive_fakes import FakeArchiver, FakePartitionStore
from tests.builders import a_copy_of, an_event
from tests.fakes import FakeStoredFilter

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
EVENTS = ArchivedTable.EVENTS


def archived_store() -> tuple[FakePartitionStore, FakeArchiver, list[Path]]:
    store, archiver = FakePartitionStore(), FakeArchiver()
    events = [an_event(received_at=NOW - timedelta(days=d)) for d in (9, 9, 8)]
    store.add(
        *events, Duplicate.of(a_copy_of(events[0]), original=events[0].event_id, conflicting=False)
    )
    ArchiveEvents(
        store=store, archiver=archiver, late=store, clock=lambda: NOW, retention=timedelta(days=7)
    ).execute()
    assert store.rows(EVENTS) == []
    return store, archiver, sorted(archiver.files, key=str)


def test_restoring_twice_stores_each_event_once(seen: FakeStoredFilter) -> None:
    store, archiver, files = archived_store()
    restore = RestoreEvents(archiver=archiver, target=store, seen=seen, chunk_rows=2)

    first = restore.execute(files)
    second = restore.execute(files)

    assert sum(f.inserted for f in first) == 4  # three events and the duplicate
    assert sum(f.inserted for f in second) == 0
    assert sorted(store.rows(EVENTS), key=str) == sorted(archiver.rows_in(EVENTS), key=str)
    assert len(store.rows(ArchivedTable.DUPLICATES)) == 1


def test_restored_events_refill_the_fingerprints(seen: FakeStoredFilter) -> None:
    store, archiver, files = archived_store()
    store.tables[ArchivedTable.FINGERPRINTS].clear()

    RestoreEvents(archiver=archiver, target=store, seen=seen).execute(files)

    assert len(store.rows(ArchivedTable.FINGERPRINTS)) == 3


def test_restored_events_are_never_ruled_out_by_the_stored_filter(
    seen: FakeStoredFilter,
) -> None:
    store, archiver, files = archived_store()
    restored = {
        record.fingerprint for record in archiver.rows_in(EVENTS) if isinstance(record, Event)
    }

    RestoreEvents(archiver=archiver, target=store, seen=seen).execute(files)

    assert seen.unseen(restored) == set()


def test_a_corrupt_file_is_refused_before_anything_is_written(seen: FakeStoredFilter) -> None:
    store, archiver, files = archived_store()
    archiver.corrupt(files[-1])

    with pytest.raises(ArchiveError, match="corrupt or truncated"):
        RestoreEvents(archiver=archiver, target=store, seen=seen).execute(files)

    assert store.rows(EVENTS) == []
    assert store.rows(ArchivedTable.DUPLICATES) == []


def test_a_file_without_a_manifest_is_refused(seen: FakeStoredFilter) -> None:
    store, archiver, files = archived_store()

    with pytest.raises(ArchiveError, match="no manifest"):
        RestoreEvents(archiver=archiver, target=store, seen=seen).execute(
            [*files, Path("elsewhere.jsonl.gz")]
        )

    assert store.rows(EVENTS) == []
