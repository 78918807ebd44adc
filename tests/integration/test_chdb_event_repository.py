"""The EventRepository contract against embedded chDB, and how its files behave."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dedup.adapters.outbound.clickhouse.chdb_executor import ChdbExecutor
from dedup.adapters.outbound.clickhouse.event_repository import ChdbEventRepository
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.inspector import ClickHouseInspector
from dedup.adapters.outbound.clickhouse.migration_runner import MigrationRunner
from dedup.adapters.outbound.clickhouse.miniorm import Statement
from dedup.domain.event import Event
from dedup.domain.outcome import Duplicate

from tests.contracts.event_repository_contract import (
    WINDOW_SECONDS,
    EventRepositoryContract,
    a_duplicate_of,
    an_event,
)
from tests.integration.conftest import MIGRATIONS

pytestmark = pytest.mark.integration


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def inspector(migrated_chdb: tuple[Executor, str]) -> ClickHouseInspector:
    executor, database = migrated_chdb
    return ClickHouseInspector(executor=executor, database=database)


class TestChdbEventRepository(EventRepositoryContract):
    @pytest.fixture
    def repo(self, migrated_chdb: tuple[Executor, str], now: datetime) -> ChdbEventRepository:
        executor, database = migrated_chdb
        return ChdbEventRepository(
            executor=executor, database=database, window_seconds=WINDOW_SECONDS, clock=lambda: now
        )

    @pytest.fixture
    def stored_events(self, inspector: ClickHouseInspector) -> Callable[[], list[Event]]:
        return inspector.events

    @pytest.fixture
    def stored_duplicates(self, inspector: ClickHouseInspector) -> Callable[[], list[Duplicate]]:
        return inspector.duplicates


def test_events_survive_closing_and_reopening_the_session(tmp_path: Path, now: datetime) -> None:
    url = f"chdb://{tmp_path / 'chdb'}?database=kept"
    repo = ChdbEventRepository.from_url(url, window_seconds=WINDOW_SECONDS)
    MigrationRunner(repo.executor, MIGRATIONS, repo.database).up()
    event = an_event(received_at=now)
    duplicate = a_duplicate_of(event)
    repo.save(events=[event], duplicates=[duplicate])
    repo.close()

    reopened = ChdbEventRepository.from_url(url, window_seconds=WINDOW_SECONDS)
    try:
        assert reopened.owners([event.fingerprint]) == {event.fingerprint: event.holder}
        assert reopened.recorded([duplicate]) == {duplicate.event_id}
    finally:
        reopened.close()


def test_events_survive_into_another_process(tmp_path: Path, now: datetime) -> None:
    url = f"chdb://{tmp_path / 'chdb'}?database=kept"
    repo = ChdbEventRepository.from_url(url, window_seconds=WINDOW_SECONDS)
    MigrationRunner(repo.executor, MIGRATIONS, repo.database).up()
    event = an_event(received_at=now)
    repo.save(events=[event], duplicates=[])
    repo.close()  # chDB locks its directory: another process can open it only after this

    script = (
        "from dedup.adapters.outbound.clickhouse import ChdbExecutor, ClickHouseInspector\n"
        f"executor = ChdbExecutor(path={str(tmp_path / 'chdb')!r})\n"
        "print(ClickHouseInspector(executor=executor, database='kept').events()[0].event_id)\n"
        "executor.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(event.event_id)


def test_ping_answers_without_a_database_and_creates_none(chdb_executor: ChdbExecutor) -> None:
    repo = ChdbEventRepository(executor=chdb_executor, database="absent", window_seconds=60)

    repo.ping()

    databases = Statement.text("SELECT name FROM system.databases WHERE name = 'absent'")
    assert chdb_executor.query(databases) == []
