"""ArchiveEvents against the fakes: what goes to files, what is dropped, and after a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dedup.application.archive_events import ArchiveEvents, archive_cutoff
from dedup.domain.archive import ArchiveAction, ArchivedTable, Partition, written_late
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event
from dedup.domain.outcome import Duplicate

from tests.archive_fakes import FakeArchiver, FakePartitionStore, RecordingProgress
from tests.builders import a_copy_of, an_event

NOW = datetime(2026, 11, 29, 12, 30, tzinfo=UTC)
EVENTS, DUPLICATES = ArchivedTable.EVENTS, ArchivedTable.DUPLICATES


def days_ago(days: int, *, hour: int = 10) -> datetime:
    return (NOW - timedelta(days=days)).replace(hour=hour, minute=0)


def a_duplicate_of(event: Event) -> Duplicate:
    return Duplicate.of(a_copy_of(event), original=event.event_id, conflicting=False)


@pytest.fixture
def store() -> FakePartitionStore:
    return FakePartitionStore()


@pytest.fixture
def archiver() -> FakeArchiver:
    return FakeArchiver()


@pytest.fixture
def progress() -> RecordingProgress:
    return RecordingProgress()


@pytest.fixture
def archive(
    store: FakePartitionStore, archiver: FakeArchiver, progress: RecordingProgress
) -> ArchiveEvents:
    return ArchiveEvents(
        store=store,
        archiver=archiver,
        late=store,
        clock=lambda: NOW,
        retention=timedelta(days=7),
        progress=progress,
    )


def test_partitions_older_than_the_retention_move_to_files_and_newer_ones_stay(
    archive: ArchiveEvents, store: FakePartitionStore, archiver: FakeArchiver
) -> None:
    old = [an_event(received_at=days_ago(d)) for d in (10, 10, 9, 8)]
    recent = [an_event(received_at=days_ago(d)) for d in (7, 3, 0)]
    store.add(*old, *recent)

    steps = archive.execute()

    assert {s.partition.start for s in steps} == {days_ago(d).date() for d in (10, 9, 8)}
    assert all(s.action is ArchiveAction.EXPORT_AND_DROP for s in steps)
    assert sorted(archiver.rows_in(EVENTS), key=str) == sorted(old, key=str)
    assert sorted(store.rows(EVENTS), key=str) == sorted(recent, key=str)
    assert sum(s.rows for s in steps) == len(old)


def test_duplicates_are_archived_in_their_own_files(
    archive: ArchiveEvents, store: FakePartitionStore, archiver: FakeArchiver
) -> None:
    original = an_event(received_at=days_ago(9))
    duplicate = a_duplicate_of(original)
    store.add(original, duplicate)

    archive.execute()

    assert archiver.rows_in(DUPLICATES) == [duplicate]
    assert archiver.rows_in(EVENTS) == [original]
    assert {m.table for m, _ in archiver.files.values()} == {EVENTS, DUPLICATES}
    assert store.rows(DUPLICATES) == []


def test_today_is_never_archived_even_when_asked_for_everything(
    archive: ArchiveEvents, store: FakePartitionStore
) -> None:
    today = an_event(received_at=NOW.replace(hour=0, minute=0))
    yesterday = an_event(received_at=days_ago(1))
    store.add(today, yesterday)

    archive.execute(older_than=timedelta(0))

    assert store.rows(EVENTS) == [today]


def test_the_cutoff_is_the_earlier_of_midnight_today_and_now_minus_the_age() -> None:
    assert archive_cutoff(NOW, timedelta(hours=1)) == datetime(2026, 11, 29, tzinfo=UTC)
    assert archive_cutoff(NOW, timedelta(days=2)) == NOW - timedelta(days=2)
    day = Partition(table=EVENTS, start=datetime(2026, 11, 27).date())
    assert not day.closed_before(NOW - timedelta(days=2))  # the 27th ends after 27th 12:30
    assert day.closed_before(NOW - timedelta(days=1, hours=12, minutes=30))


def test_a_failure_after_export_loses_nothing_and_the_rerun_drops_without_a_second_file(
    archive: ArchiveEvents, store: FakePartitionStore, archiver: FakeArchiver
) -> None:
    old = [an_event(received_at=days_ago(9)) for _ in range(3)]
    store.add(*old)
    store.fail_next_drop = True

    with pytest.raises(BackendUnavailableError):
        archive.execute()
    assert sorted(store.rows(EVENTS), key=str) == sorted(old, key=str)  # still in ClickHouse
    assert len(archiver.files) == 1  # and in a file

    steps = archive.execute()

    assert [s.action for s in steps] == [ArchiveAction.DROP_ARCHIVED]
    assert store.rows(EVENTS) == []
    assert len(archiver.files) == 1
    assert sorted(archiver.rows_in(EVENTS), key=str) == sorted(old, key=str)


def test_rows_that_arrive_before_a_late_drop_go_to_a_new_file_and_the_first_is_set_aside(
    archive: ArchiveEvents, store: FakePartitionStore, archiver: FakeArchiver
) -> None:
    first = an_event(received_at=days_ago(9))
    store.add(first)
    store.fail_next_drop = True
    with pytest.raises(BackendUnavailableError):
        archive.execute()
    late = an_event(received_at=days_ago(9, hour=11))
    store.add(late)  # e.g. restored while the partition waited for its drop

    archive.execute()

    # the new file holds both rows; the first (never overwritten) is set aside, not deleted,
    # so that no row is in two archive files
    [(manifest, rows)] = archiver.files.values()
    assert sorted(rows, key=str) == sorted([first, late], key=str)
    assert [rows for _, rows in archiver.aside.values()] == [[first]]
    assert manifest.file not in archiver.aside
    assert store.rows(EVENTS) == []


def test_a_matching_file_that_fails_verification_is_not_trusted(
    archive: ArchiveEvents, store: FakePartitionStore, archiver: FakeArchiver
) -> None:
    event = an_event(received_at=days_ago(9))
    store.add(event)
    store.fail_next_drop = True
    with pytest.raises(BackendUnavailableError):
        archive.execute()
    archiver.corrupt(next(iter(archiver.files)))

    steps = archive.execute()

    assert [s.action for s in steps] == [ArchiveAction.EXPORT_AND_DROP]
    assert len(archiver.files) == 2
    assert store.rows(EVENTS) == []


def test_a_dry_run_lists_the_work_and_changes_nothing(
    archive: ArchiveEvents,
    store: FakePartitionStore,
    archiver: FakeArchiver,
    progress: RecordingProgress,
) -> None:
    old = [an_event(received_at=days_ago(d)) for d in (9, 8)]
    store.add(*old)

    steps = archive.execute(dry_run=True)

    assert [(s.action, s.rows) for s in steps] == [(ArchiveAction.EXPORT_AND_DROP, 1)] * 2
    assert archiver.files == {}
    assert len(store.rows(EVENTS)) == 2
    assert store.dropped == []
    assert len(progress.notes) == 2


def test_progress_counts_every_exported_row(
    archive: ArchiveEvents, store: FakePartitionStore, progress: RecordingProgress
) -> None:
    store.add(*(an_event(received_at=days_ago(9)) for _ in range(2500)))

    archive.execute()

    assert progress.begun == [(f"export {EVENTS.value} {days_ago(9).date()}", 2500)]
    assert progress.advanced == 2500


def test_a_late_row_stored_between_the_export_and_the_drop_is_put_back_for_the_next_run(
    archive: ArchiveEvents, store: FakePartitionStore, archiver: FakeArchiver
) -> None:
    on_time = an_event(received_at=days_ago(9))
    late = an_event(received_at=days_ago(9, hour=11))
    store.add(on_time)
    store.before_drop.append(lambda: store.store_late(late, written_at=NOW))

    steps = archive.execute()

    assert archiver.rows_in(EVENTS) == [on_time]
    assert store.rows(EVENTS) == [late]  # lost to the drop, stored again
    assert [s.action for s in steps][-1] is ArchiveAction.PUT_BACK_LATE
    archive.execute()
    assert sorted(archiver.rows_in(EVENTS), key=str) == sorted([on_time, late], key=str)
    assert store.rows(EVENTS) == []


def test_a_late_row_that_made_it_into_the_file_is_not_put_back(
    archive: ArchiveEvents, store: FakePartitionStore, archiver: FakeArchiver
) -> None:
    late = an_event(received_at=days_ago(9))
    store.store_late(late, written_at=NOW)

    steps = archive.execute()

    assert archiver.rows_in(EVENTS) == [late]
    assert store.rows(EVENTS) == []
    assert ArchiveAction.PUT_BACK_LATE not in {s.action for s in steps}


def test_a_run_forgets_only_the_journal_written_well_before_it_began(
    archive: ArchiveEvents, store: FakePartitionStore
) -> None:
    old, recent = an_event(received_at=days_ago(3)), an_event(received_at=days_ago(2))
    store.store_late(old, written_at=NOW - timedelta(days=2))
    store.store_late(recent, written_at=NOW - timedelta(minutes=5))

    archive.execute()

    assert [record for record, _ in store.journal] == [recent]


def test_rows_of_a_closed_day_are_written_late_and_todays_are_not() -> None:
    assert written_late(days_ago(1, hour=23), now=NOW)
    assert not written_late(NOW - timedelta(minutes=5), now=NOW)
    # a worker whose clock trails a little still journals yesterday's rows just after midnight
    just_before_midnight = NOW.replace(hour=23, minute=30)
    assert written_late(NOW.replace(hour=0), now=just_before_midnight)
