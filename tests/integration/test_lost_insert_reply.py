"""An INSERT the server committed but whose reply never reached the worker, on the 18.16 server.

No real server can be told to drop one reply, so this is the one place the driver is patched:
clickhouse-driver runs the INSERT for real and only then fails as a reset connection would.
chDB runs in the worker's own process: there is no reply to lose, so it has no such test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from clickhouse_driver import Client  # type: ignore[import-untyped]
from clickhouse_driver.errors import NetworkError  # type: ignore[import-untyped]
from dedup.adapters.outbound.clickhouse.event_repository import ClickHouseEventRepository
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.inspector import ClickHouseInspector
from dedup.adapters.outbound.clickhouse.server_executor import ServerExecutor
from dedup.adapters.outbound.no_stored_filter import NoStoredFilter
from dedup.adapters.outbound.redis_hash_cache import RedisHashCache
from dedup.application.deduplicate_event import DeduplicateEvent
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.outcome import Outcome
from pytest_mock import MockerFixture

from tests.accounting import Ledger, assert_accounting_invariant
from tests.builders import a_copy_of
from tests.contracts.event_repository_contract import WINDOW_SECONDS, an_event

pytestmark = pytest.mark.integration


@pytest.fixture
def executor() -> Iterator[ServerExecutor]:
    """The worker's own connection: the session's shared one never sees the lost reply."""
    executor = ServerExecutor()
    yield executor
    executor.close()


@pytest.fixture
def deduplicate(
    migrated_server: tuple[Executor, str],
    executor: ServerExecutor,
    client: redis.Redis[bytes],
    prefix: str,
) -> DeduplicateEvent:
    _shared, database = migrated_server
    return DeduplicateEvent(
        cache=RedisHashCache(client, ttl_seconds=60, prefix=prefix),
        events=ClickHouseEventRepository(
            executor=executor, database=database, window_seconds=WINDOW_SECONDS
        ),
        seen=NoStoredFilter(),
    )


def lose_the_reply_of_the_first_insert_into(table: str, mocker: MockerFixture) -> list[str]:
    """Patch the driver: that INSERT commits on the server, then the connection drops."""
    real_execute = Client.execute
    lost: list[str] = []

    def execute(client: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        result = real_execute(client, query, *args, **kwargs)
        if not lost and query.startswith("INSERT INTO") and f".`{table}`" in query:
            lost.append(query)
            client.disconnect()  # as the driver does when a read fails: the retry reconnects
            raise NetworkError("Connection reset by peer (127.0.0.1:9000)")
        return result

    mocker.patch.object(Client, "execute", autospec=True, side_effect=execute)
    return lost


def test_a_batch_whose_insert_reply_was_lost_is_stored_once_when_retried(
    deduplicate: DeduplicateEvent,
    migrated_server: tuple[Executor, str],
    mocker: MockerFixture,
) -> None:
    shared, database = migrated_server
    now = datetime.now(UTC).replace(microsecond=0)
    events = [an_event(received_at=now) for _ in range(5)]
    copy = a_copy_of(events[0])  # a client retry in the same batch, to be recorded once
    batch = [*events, copy]
    lost = lose_the_reply_of_the_first_insert_into("events", mocker)

    with pytest.raises(BackendUnavailableError):  # the task retries the batch on this error
        deduplicate.execute(batch)
    assert len(lost) == 1
    landed = ClickHouseInspector(executor=shared, database=database).events()
    assert {e.event_id for e in landed} == {e.event_id for e in events}  # the server has them

    retried = deduplicate.execute(batch)

    assert retried.stored == ()
    assert {event.event_id: retried.outcomes[event.event_id] for event in events} == {
        event.event_id: Outcome.ALREADY_STORED for event in events
    }
    assert retried.outcomes[copy.event_id] is Outcome.DUPLICATE
    ledger = Ledger.from_clickhouse(database)
    assert sorted(ledger.events) == sorted((e.event_id, e.fingerprint.digest) for e in events)
    assert ledger.duplicates == ((copy.event_id, events[0].event_id),)
    accounting = assert_accounting_invariant([e.event_id for e in batch], ledger)
    assert (accounting.stored, accounting.recorded, accounting.unasked) == (5, 1, 0)
