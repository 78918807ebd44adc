"""The lookups that decide exactly-once read every replica of a shard, not the first alive.

A replica back from an outage answers while it still fetches what its neighbour took
meanwhile; here it is made to lag for as long as the test needs (SYSTEM STOP FETCHES).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from attrs import evolve
from dedup.adapters.outbound.clickhouse.event_repository import ClickHouseEventRepository
from dedup.adapters.outbound.clickhouse.mappers import row_from_event
from dedup.adapters.outbound.clickhouse.migration_runner import MigrationRunner
from dedup.adapters.outbound.clickhouse.miniorm import Statement
from dedup.adapters.outbound.clickhouse.replicas import EveryReplica
from dedup.adapters.outbound.clickhouse.server_executor import ServerExecutor
from dedup.adapters.outbound.clickhouse.tables import EVENTS
from dedup.adapters.outbound.clickhouse.url import server_executor_from_url
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event
from dedup.infrastructure.container import opened
from dedup.infrastructure.settings import Settings

from tests.builders import a_losing_copy
from tests.clickhouse_cluster import ClickHouseCluster, ClickHouseNode
from tests.contracts.event_repository_contract import WINDOW_SECONDS, an_event
from tests.e2e.processes import wait_until
from tests.integration.conftest import MIGRATIONS

pytestmark = pytest.mark.cluster

LOCAL_EVENTS = evolve(EVENTS, name="events_local")


@pytest.fixture
def database(chcluster: ClickHouseCluster, cluster_database: str) -> Iterator[str]:
    executor = server_executor_from_url(chcluster.url(cluster_database), cluster=chcluster.name)
    MigrationRunner(executor, MIGRATIONS, cluster_database, cluster=chcluster.name).up()
    yield cluster_database
    executor.execute(
        Statement.text(f"DROP DATABASE IF EXISTS {cluster_database} ON CLUSTER {chcluster.name}")
    )
    executor.close()


@pytest.fixture
def repo(
    chcluster: ClickHouseCluster, database: str, tmp_path: Path
) -> Iterator[ClickHouseEventRepository]:
    """The repository as the worker builds it, from settings, in the composition root."""
    settings = Settings(
        data_dir=tmp_path, clickhouse_url=chcluster.url(database), clickhouse_cluster=chcluster.name
    )
    with opened(settings) as container:
        repository = container.event_repository()
        assert isinstance(repository, ClickHouseEventRepository)
        yield repository


@pytest.fixture
def distributed_only(
    chcluster: ClickHouseCluster, database: str
) -> Iterator[ClickHouseEventRepository]:
    """The same lookups through the Distributed tables alone: one replica per shard."""
    url = chcluster.url(database)
    repository = ClickHouseEventRepository(
        executor=server_executor_from_url(url, cluster=chcluster.name),
        database=database,
        window_seconds=WINDOW_SECONDS,
        cluster=chcluster.name,
    )
    yield repository
    repository.close()


def _shard_of(node: ClickHouseNode, event: Event) -> int:
    """The shard the Distributed tables send the event to (sipHash64(fingerprint) % 2, from 1)."""
    digest = event.fingerprint.digest.hex()
    [(remainder,)] = node.query(f"SELECT sipHash64(toFixedString(unhex('{digest}'), 16)) % 2")
    return int(remainder) + 1


def _event_on_shard(chcluster: ClickHouseCluster, shard: int) -> Event:
    node = chcluster.node(shard=1, replica=1)
    now = datetime.now(UTC).replace(microsecond=0)
    return next(
        e for e in iter(lambda: an_event(received_at=now), None) if _shard_of(node, e) == shard
    )


def _insert_on(node: ClickHouseNode, database: str, *events: Event) -> None:
    """Into that replica's events_local alone; its view fills its event_fingerprints_local."""
    executor = ServerExecutor(port=node.tcp_port)
    try:
        executor.insert(database, LOCAL_EVENTS, [row_from_event(e) for e in events])
    finally:
        executor.close()


def _holds(node: ClickHouseNode, database: str, event: Event) -> bool:
    table = f"{database}.event_fingerprints_local"
    sql = f"SELECT count() FROM {table} WHERE event_id = '{event.event_id}'"
    return bool(node.query(sql)[0][0])


@contextmanager
def _lagging(database: str, *nodes: ClickHouseNode) -> Iterator[None]:
    """These replicas fetch nothing their neighbours take until the block ends."""
    tables = [f"{database}.events_local", f"{database}.event_fingerprints_local"]
    for node in nodes:
        for table in tables:
            node.query(f"SYSTEM STOP FETCHES {table}")
    try:
        yield
    finally:
        for node in nodes:
            for table in tables:
                node.query(f"SYSTEM START FETCHES {table}")


@contextmanager
def _stopped(*nodes: ClickHouseNode) -> Iterator[None]:
    for node in nodes:
        node.stop(kill=True)
    try:
        yield
    finally:
        for node in nodes:
            node.start()
        for node in nodes:
            wait_until(node.ready, timeout=120, what=f"clickhouse-server {node.name} back")


def test_an_event_only_the_second_replica_holds_is_found_while_the_first_lags(
    chcluster: ClickHouseCluster,
    database: str,
    repo: ClickHouseEventRepository,
    distributed_only: ClickHouseEventRepository,
) -> None:
    first, second = chcluster.node(shard=1, replica=1), chcluster.node(shard=1, replica=2)
    event = _event_on_shard(chcluster, 1)
    with _lagging(database, first):
        _insert_on(second, database, event)
        time.sleep(2)  # replication would have fetched it in milliseconds
        assert _holds(second, database, event) and not _holds(first, database, event)
        # Through the Distributed table the shard answers from its first replica: missed.
        assert distributed_only.owners([event.fingerprint]) == {}
        assert repo.owners([event.fingerprint]) == {event.fingerprint: event.holder}
    wait_until(lambda: _holds(first, database, event), timeout=30, what="the fetch, resumed")


def test_a_race_whose_two_events_sit_on_two_replicas_is_contested(
    chcluster: ClickHouseCluster,
    database: str,
    repo: ClickHouseEventRepository,
    distributed_only: ClickHouseEventRepository,
) -> None:
    first, second = chcluster.node(shard=1, replica=1), chcluster.node(shard=1, replica=2)
    winner = _event_on_shard(chcluster, 1)
    loser = a_losing_copy(winner)
    with _lagging(database, first, second):
        _insert_on(first, database, loser)
        _insert_on(second, database, winner)
        assert distributed_only.contested([winner.fingerprint]) == {}
        contested = repo.contested([winner.fingerprint], written_after=repo.mark())
        assert [c.event_id for c in contested[winner.fingerprint]] == [
            winner.event_id,
            loser.event_id,
        ]
        # Rows on one replica only count once: nothing else is contested.
        other = _event_on_shard(chcluster, 1)
        _insert_on(second, database, other)
        assert other.fingerprint not in repo.contested([winner.fingerprint, other.fingerprint])


def test_lookups_answer_without_one_replica_and_wait_without_a_whole_shard(
    chcluster: ClickHouseCluster, database: str, repo: ClickHouseEventRepository
) -> None:
    first, second = chcluster.node(shard=2, replica=1), chcluster.node(shard=2, replica=2)
    event = _event_on_shard(chcluster, 2)
    repo.save(events=[event], duplicates=[])  # through Distributed, to the shard's first
    wait_until(lambda: _holds(second, database, event), timeout=30, what="replicated")
    assert repo.owners([event.fingerprint]) == {event.fingerprint: event.holder}  # opened
    with _stopped(first):
        assert repo.owners([event.fingerprint]) == {event.fingerprint: event.holder}
        assert repo.contested([event.fingerprint]) == {}
        with _stopped(second):
            with pytest.raises(BackendUnavailableError, match="shard 2"):
                repo.owners([event.fingerprint])
            with pytest.raises(BackendUnavailableError, match="shard 2"):
                repo.contested([event.fingerprint])

    def answers() -> bool:
        try:
            return repo.owners([event.fingerprint]) == {event.fingerprint: event.holder}
        except BackendUnavailableError:
            return False

    wait_until(answers, timeout=60, what="lookups answer again once the shard is back")


def test_replicas_this_worker_cannot_reach_are_read_through_the_distributed_tables(
    chcluster: ClickHouseCluster, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    # <remote_servers> names addresses only the servers reach (a port mapping, a network of
    # their own): every direct connection fails, and the lookup reads as the servers do.
    url = chcluster.url(database)
    unreachable = EveryReplica(
        directory=server_executor_from_url(url),
        cluster=chcluster.name,
        connect=lambda replica: ServerExecutor(host=replica.host, port=1, connect_timeout=0.5),
    )
    repo = ClickHouseEventRepository(
        executor=server_executor_from_url(url, cluster=chcluster.name),
        database=database,
        window_seconds=WINDOW_SECONDS,
        cluster=chcluster.name,
        replicas=unreachable,
    )
    try:
        event = _event_on_shard(chcluster, 2)
        rival = a_losing_copy(event)
        repo.save(events=[event, rival], duplicates=[])
        with caplog.at_level("WARNING"):
            assert repo.owners([event.fingerprint]) == {event.fingerprint: event.holder}
        assert "read through the Distributed tables" in caplog.text
        contested = repo.contested([event.fingerprint])
        assert [c.event_id for c in contested[event.fingerprint]] == [
            event.event_id,
            rival.event_id,
        ]
    finally:
        repo.close()
