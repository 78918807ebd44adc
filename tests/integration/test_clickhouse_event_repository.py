"""The EventRepository contract against a real ClickHouse server, plus what only it can show."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from dedup.adapters.outbound.clickhouse.event_repository import ClickHouseEventRepository
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.inspector import ClickHouseInspector
from dedup.adapters.outbound.clickhouse.miniorm import Param, Statement, qualified
from dedup.adapters.outbound.clickhouse.server_executor import ServerExecutor
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event
from dedup.domain.outcome import Duplicate

from tests.builders import a_losing_copy
from tests.contracts.event_repository_contract import (
    WINDOW_SECONDS,
    EventRepositoryContract,
    an_event,
)
from tests.unit.test_miniorm import BINARY as BINARY_VALUES
from tests.unit.test_miniorm import HOSTILE as HOSTILE_STRINGS

pytestmark = pytest.mark.integration


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def inspector(migrated_server: tuple[Executor, str]) -> ClickHouseInspector:
    executor, database = migrated_server
    return ClickHouseInspector(executor=executor, database=database)


class TestClickHouseEventRepository(EventRepositoryContract):
    @pytest.fixture
    def repo(
        self, migrated_server: tuple[Executor, str], now: datetime
    ) -> ClickHouseEventRepository:
        executor, database = migrated_server
        return ClickHouseEventRepository(
            executor=executor, database=database, window_seconds=WINDOW_SECONDS, clock=lambda: now
        )

    @pytest.fixture
    def stored_events(self, inspector: ClickHouseInspector) -> Callable[[], list[Event]]:
        return inspector.events

    @pytest.fixture
    def stored_duplicates(self, inspector: ClickHouseInspector) -> Callable[[], list[Duplicate]]:
        return inspector.duplicates


def test_the_materialized_view_fills_event_fingerprints(
    migrated_server: tuple[Executor, str], inspector: ClickHouseInspector, now: datetime
) -> None:
    executor, database = migrated_server
    repo = ClickHouseEventRepository(executor=executor, database=database, window_seconds=60)
    events = [an_event(received_at=now) for _ in range(3)]
    repo.save(events=events, duplicates=[])
    assert sorted(inspector.fingerprint_rows()) == sorted(
        (e.fingerprint.digest, e.event_id) for e in events
    )


@pytest.mark.parametrize("loser_last", [True, False], ids=["loser-inserted-last", "winner-last"])
def test_a_merge_keeps_the_event_owners_names_of_two_with_one_fingerprint(
    migrated_server: tuple[Executor, str],
    inspector: ClickHouseInspector,
    now: datetime,
    loser_last: bool,
) -> None:
    # The ids share their upper half (one millisecond, as uuid-utils makes them): the merge
    # must still keep the winner, not whichever was inserted last.
    executor, database = migrated_server
    repo = ClickHouseEventRepository(executor=executor, database=database, window_seconds=60)
    winner = an_event(received_at=now, payload={"same": 1})
    loser = a_losing_copy(winner)
    for event in [winner, loser] if loser_last else [loser, winner]:
        repo.save(events=[event], duplicates=[])
    assert repo.owners([winner.fingerprint]) == {winner.fingerprint: winner.holder}
    assert [c.event_id for c in repo.contested([winner.fingerprint])[winner.fingerprint]] == [
        winner.event_id,
        loser.event_id,
    ]
    executor.execute(Statement.text(f"OPTIMIZE TABLE {qualified(database, 'events')} FINAL"))
    assert inspector.events() == [winner]
    assert inspector.count("events", final=False) == 1


def test_an_unreachable_server_is_reported_as_backend_unavailable() -> None:
    repo = ClickHouseEventRepository(
        executor=ServerExecutor(port=1, connect_timeout=0.5), database="x", window_seconds=60
    )
    with pytest.raises(BackendUnavailableError) as caught:
        repo.ping()
    assert caught.value.backend == "clickhouse"
    with pytest.raises(BackendUnavailableError):
        repo.save(events=[an_event(received_at=datetime.now().astimezone())], duplicates=[])


def test_a_missing_database_is_reported_as_backend_unavailable(
    clickhouse_server: ServerExecutor, server_database: str, now: datetime
) -> None:
    repo = ClickHouseEventRepository(
        executor=clickhouse_server, database=server_database, window_seconds=60
    )
    repo.ping()
    with pytest.raises(BackendUnavailableError):
        repo.owners([an_event(received_at=now).fingerprint])


def test_hostile_values_round_trip_through_server_parameters(
    clickhouse_server: ServerExecutor,
) -> None:
    for text in HOSTILE_STRINGS:
        assert clickhouse_server.query(Statement(("SELECT ", Param(text, "String"), " AS v"))) == [
            (text,)
        ]
    for data in BINARY_VALUES:
        rows = clickhouse_server.query(Statement(("SELECT hex(", Param(data, "String"), ") AS v")))
        assert rows == [(data.hex().upper(),)]
    query = Statement(
        (
            "SELECT toFixedString(",
            Param(BINARY_VALUES[2], "String"),
            ", 16) IN ",
            Param(tuple(BINARY_VALUES), "Array(FixedString(16))"),
            " AS v",
        )
    )
    assert clickhouse_server.query(query) == [(1,)]


def test_nullable_strings_come_back_as_text_or_none(migrated_server: tuple[Executor, str]) -> None:
    executor, _ = migrated_server
    rows = executor.query(Statement.text("SELECT toNullable('é'), CAST(NULL AS Nullable(String))"))
    assert rows == [("é", None)]
