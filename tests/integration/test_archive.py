"""Retention against real engines: the 18.16 server (all rules) and chDB (the core rules)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dedup.adapters.outbound.clickhouse.event_repository import ClickHouseEventRepository
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.inspector import ClickHouseInspector
from dedup.adapters.outbound.clickhouse.late_journal import ClickHouseLateJournal
from dedup.adapters.outbound.clickhouse.miniorm import Statement, qualified
from dedup.adapters.outbound.clickhouse.partition_store import ClickHousePartitionStore
from dedup.adapters.outbound.clickhouse.url import server_executor_from_url
from dedup.adapters.outbound.file_archiver import FileArchiver
from dedup.adapters.outbound.memory_hash_cache import MemoryHashCache
from dedup.adapters.outbound.no_stored_filter import NoStoredFilter
from dedup.application.archive_events import ArchiveEvents
from dedup.application.deduplicate_event import DeduplicateEvent
from dedup.application.purge_fingerprints import PurgeFingerprints
from dedup.application.restore_events import RestoreEvents
from dedup.domain.archive import ArchiveAction, ArchivedTable, ArchiveError, Partition
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event
from dedup.domain.outcome import Duplicate, Outcome

from tests.builders import a_copy_of, an_event, an_event_id
from tests.contracts.event_repository_contract import STANDARD_CASES
from tests.integration.conftest import CLICKHOUSE_URL
from tests.unit.test_file_archiver import as_written_before_the_standard_fields

pytestmark = pytest.mark.integration

WINDOW = timedelta(days=30)
RETENTION = timedelta(days=7)


class FailingDropStore(ClickHousePartitionStore):
    """The real store, with a crash injected between a verified export and its drop."""

    fail_drops = True

    def drop(self, partition: Partition) -> None:
        if self.fail_drops:
            raise BackendUnavailableError("clickhouse", "injected: died before the drop")
        super().drop(partition)


class Setup:
    """One database on one engine, with the archive objects built on it."""

    def __init__(self, executor: Executor, database: str, directory: Path) -> None:
        self.executor, self.database = executor, database
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.repo = ClickHouseEventRepository(
            executor=executor,
            database=database,
            window_seconds=int(WINDOW.total_seconds()),
            clock=lambda: self.now,
        )
        self.store = ClickHousePartitionStore(executor=executor, database=database, page_rows=2)
        self.archiver = FileArchiver(directory)
        self.inspector = ClickHouseInspector(executor=executor, database=database)

    def archive(self, store: ClickHousePartitionStore | None = None) -> ArchiveEvents:
        return ArchiveEvents(
            store=store or self.store,
            archiver=self.archiver,
            late=ClickHouseLateJournal(executor=self.store.executor, database=self.store.database),
            clock=lambda: self.now,
            retention=RETENTION,
        )

    def purge(self) -> PurgeFingerprints:
        return PurgeFingerprints(store=self.store, clock=lambda: self.now, window=WINDOW)

    def restore(self) -> RestoreEvents:
        return RestoreEvents(
            archiver=self.archiver, target=self.store, seen=NoStoredFilter(), chunk_rows=5
        )

    def at(self, days: int, hour: int = 10) -> datetime:
        return (self.now - timedelta(days=days)).replace(hour=hour, minute=0, second=0)

    def old_history(self) -> tuple[list[Event], list[Duplicate]]:
        """Events 60, 10, 9 and 8 days old (several per day), one duplicate on day 9."""
        events = [
            an_event(received_at=self.at(days, hour))
            for days in (60, 10, 9, 8)
            for hour in (1, 12, 23)
        ]
        duplicate = Duplicate.of(
            a_copy_of(events[6]), original=events[6].event_id, conflicting=False
        )
        self.repo.save(events=events, duplicates=[duplicate])
        return events, [duplicate]

    def raw_count(self, table: str) -> int:
        """Rows without FINAL: a row stored twice would show here."""
        statement = Statement.text(f"SELECT count() FROM {qualified(self.database, table)}")
        return int(self.executor.query(statement)[0][0])


@pytest.fixture(params=["server", "chdb"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Setup:
    executor, database = request.getfixturevalue(f"migrated_{request.param}")
    return Setup(executor, database, tmp_path / "archive")


@pytest.fixture
def server(migrated_server: tuple[Executor, str], tmp_path: Path) -> Setup:
    return Setup(*migrated_server, tmp_path / "archive")


def ids(records: list[Event] | list[Duplicate]) -> set[object]:
    return {r.event_id for r in records}


def test_old_partitions_go_to_files_whose_counts_equal_the_rows_dropped(setup: Setup) -> None:
    events, _ = setup.old_history()
    fresh = [an_event(received_at=setup.now) for _ in range(3)]
    setup.repo.save(events=fresh, duplicates=[])

    steps = setup.archive().execute()

    assert {(s.partition.table, s.action) for s in steps} == {
        (ArchivedTable.EVENTS, ArchiveAction.EXPORT_AND_DROP),
        (ArchivedTable.DUPLICATES, ArchiveAction.EXPORT_AND_DROP),
    }
    event_steps = [s for s in steps if s.partition.table is ArchivedTable.EVENTS]
    assert len(event_steps) == 4  # days 60, 10, 9, 8 (8 days ago is past the 7-day retention)
    assert sum(s.rows for s in event_steps) == len(events)
    for step in steps:
        assert step.file is not None
        assert setup.archiver.verify(step.file).rows == step.rows
    assert ids(setup.inspector.events()) == ids(fresh)
    assert setup.inspector.duplicates() == []
    archived = [r for s in event_steps for r in setup.archiver.read(s.file)]  # type: ignore[arg-type]
    assert sorted(archived, key=lambda e: e.event_id) == sorted(events, key=lambda e: e.event_id)


def test_a_failure_after_export_loses_nothing_and_a_rerun_completes(setup: Setup) -> None:
    events, duplicates = setup.old_history()
    failing = FailingDropStore(executor=setup.executor, database=setup.database)

    with pytest.raises(BackendUnavailableError, match="injected"):
        setup.archive(failing).execute()
    assert ids(setup.inspector.events()) == ids(events)  # all still in ClickHouse
    files_after_crash = sorted(p.name for p in setup.archiver.directory.iterdir())

    steps = setup.archive().execute()

    assert ids(setup.inspector.events()) == set()
    assert steps[0].action is ArchiveAction.DROP_ARCHIVED  # the crashed run's file, reused
    names = sorted(p.name for p in setup.archiver.directory.iterdir())
    assert set(files_after_crash) <= set(names)
    assert not any(".1." in name for name in names)  # no second file for any day
    archived = [r for s in steps if s.file for r in setup.archiver.read(s.file)]
    assert ids([r for r in archived if isinstance(r, Event)]) == ids(events)
    assert ids([r for r in archived if isinstance(r, Duplicate)]) == ids(duplicates)


def test_restoring_twice_gives_each_event_once(setup: Setup) -> None:
    events, duplicates = setup.old_history()
    steps = setup.archive().execute()
    files = [s.file for s in steps if s.file is not None]

    first = setup.restore().execute(files)
    second = setup.restore().execute(files)

    assert sum(f.inserted for f in first) == len(events) + len(duplicates)
    assert sum(f.inserted for f in second) == 0
    assert ids(setup.inspector.events()) == ids(events)
    assert setup.raw_count("events") == len(events)
    assert setup.raw_count("event_duplicates") == len(duplicates)


@pytest.mark.parametrize("written", ["now", "before-the-standard-fields"])
def test_archive_then_restore_gives_back_the_standard_columns(setup: Setup, written: str) -> None:
    events = [
        an_event(payload=payload, received_at=setup.at(9, hour))
        for hour, (payload, _fields) in enumerate(STANDARD_CASES.values())
    ]
    setup.repo.save(events=events, duplicates=[])
    [step] = [s for s in setup.archive().execute() if s.file is not None]
    assert step.file is not None
    if written != "now":
        as_written_before_the_standard_fields(step.file)

    setup.restore().execute([step.file])

    restored = setup.inspector.events()
    assert restored == sorted(events, key=lambda e: e.event_id)
    in_sent_order = sorted(restored, key=lambda e: e.received_at)
    assert [e.standard for e in in_sent_order] == [f for _p, f in STANDARD_CASES.values()]
    signed_up = Statement.text(
        f"SELECT count() FROM {qualified(setup.database, 'events')} WHERE event = 'Signed Up'"
    )
    assert setup.executor.query(signed_up) == [(1,)]


def test_a_truncated_file_is_refused_and_nothing_is_written(setup: Setup) -> None:
    setup.old_history()
    steps = setup.archive().execute()
    files = [s.file for s in steps if s.file is not None]
    data = files[-1].read_bytes()
    files[-1].write_bytes(data[: len(data) // 2])

    with pytest.raises(ArchiveError, match="corrupt or truncated"):
        setup.restore().execute(files)

    assert setup.raw_count("events") == 0
    assert setup.raw_count("event_duplicates") == 0


def test_fingerprints_outside_the_window_are_purged_and_the_rest_kept(setup: Setup) -> None:
    events, _ = setup.old_history()
    setup.archive().execute()

    setup.purge().execute()

    kept = {row[1] for row in setup.inspector.fingerprint_rows()}
    assert kept == {e.event_id for e in events[3:]}  # the 60-day-old ones went


def test_a_dry_run_changes_nothing(setup: Setup) -> None:
    events, _ = setup.old_history()

    steps = setup.archive().execute(dry_run=True)

    assert {s.action for s in steps} == {ArchiveAction.EXPORT_AND_DROP}
    assert ids(setup.inspector.events()) == ids(events)
    assert not setup.archiver.directory.exists()


def test_a_resent_old_event_is_still_a_duplicate_after_its_original_was_archived(
    server: Setup,
) -> None:
    original = an_event(received_at=server.at(10))
    server.repo.save(events=[original], duplicates=[])
    server.archive().execute()
    assert server.inspector.events() == []

    resent = Event(
        event_id=an_event_id(),
        fingerprint=original.fingerprint,
        content=original.content,
        received_at=server.now,
        source=original.source,
        payload=original.payload,
    )
    deduplicate = DeduplicateEvent(
        cache=MemoryHashCache(ttl_seconds=3600), events=server.repo, seen=NoStoredFilter()
    )
    outcome = deduplicate.execute([resent])

    assert outcome.outcomes == {resent.event_id: Outcome.DUPLICATE}
    assert server.inspector.events() == []
    assert [d.original_event_id for d in server.inspector.duplicates()] == [original.event_id]


@pytest.fixture
def second_connection() -> Iterator[Executor]:
    executor = server_executor_from_url(CLICKHOUSE_URL)
    yield executor
    executor.close()


def test_fresh_events_keep_arriving_while_old_partitions_are_archived(
    server: Setup, second_connection: Executor
) -> None:
    events, _ = server.old_history()
    writer = ClickHouseEventRepository(
        executor=second_connection,
        database=server.database,
        window_seconds=int(WINDOW.total_seconds()),
    )
    arrived: list[Event] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    def keep_arriving() -> None:
        try:
            while not stop.is_set():
                batch = [an_event(received_at=datetime.now(UTC).replace(microsecond=0))]
                writer.save(events=batch, duplicates=[])
                arrived.extend(batch)
        except BaseException as exc:  # reported below: a thread's failure is otherwise lost
            failures.append(exc)

    thread = threading.Thread(target=keep_arriving)
    thread.start()
    try:
        steps = server.archive().execute()
        server.purge().execute()
    finally:
        stop.set()
        thread.join(timeout=30)

    assert not thread.is_alive()
    assert failures == []
    assert len(arrived) > 0
    dropped = sum(s.rows for s in steps if s.partition.table is ArchivedTable.EVENTS)
    assert dropped == len(events)
    assert ids(server.inspector.events()) == ids(arrived)
