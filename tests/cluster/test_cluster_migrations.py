"""`dedup migrate` on a cluster: shards of Replicated tables behind Distributed ones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.migration_runner import MigrationRunner
from dedup.adapters.outbound.clickhouse.miniorm import Statement
from dedup.adapters.outbound.clickhouse.url import server_executor_from_url

from tests.clickhouse_cluster import ClickHouseCluster, ClickHouseNode
from tests.e2e.processes import wait_until
from tests.integration.conftest import MIGRATIONS

pytestmark = pytest.mark.cluster

LAYOUT = {
    "events": "Distributed",
    "events_local": "ReplicatedReplacingMergeTree",
    "event_fingerprints": "Distributed",
    "event_fingerprints_local": "ReplicatedReplacingMergeTree",
    "events_fingerprints_mv": "MaterializedView",
    "event_duplicates": "Distributed",
    "event_duplicates_local": "ReplicatedReplacingMergeTree",
    "late_rows": "Distributed",
    "late_rows_local": "ReplicatedMergeTree",
    "schema_migrations": "ReplicatedReplacingMergeTree",
}


@pytest.fixture
def executor(chcluster: ClickHouseCluster, cluster_database: str) -> Iterator[Executor]:
    executor = server_executor_from_url(chcluster.url(cluster_database), cluster=chcluster.name)
    yield executor
    executor.execute(
        Statement.text(f"DROP DATABASE IF EXISTS {cluster_database} ON CLUSTER {chcluster.name}")
    )
    executor.close()


def _tables(chcluster: ClickHouseCluster, database: str) -> list[dict[str, str]]:
    sql = f"SELECT name, engine FROM system.tables WHERE database = '{database}'"
    return [dict(node.query(sql)) for node in chcluster.nodes]


def _all_applied(node: ClickHouseNode, database: str, cluster: str) -> bool:
    executor = server_executor_from_url(f"clickhouse://{node.address}/{database}")
    try:
        statuses = MigrationRunner(executor, MIGRATIONS, database, cluster=cluster).status()
        return all(s.applied and s.checksum_ok for s in statuses)
    finally:
        executor.close()


def test_up_lays_out_every_shard_and_down_removes_it(
    chcluster: ClickHouseCluster, cluster_database: str, executor: Executor
) -> None:
    runner = MigrationRunner(executor, MIGRATIONS, cluster_database, cluster=chcluster.name)
    applied = runner.up()
    assert applied == [path.name for path in sorted(MIGRATIONS.glob("*.sql"))]
    assert _tables(chcluster, cluster_database) == [LAYOUT] * len(chcluster.nodes)
    # Each shard's replicas share one ZooKeeper path per table, by the {shard} macro.
    for node in chcluster.nodes:
        [(path,)] = node.query(
            "SELECT zookeeper_path FROM system.replicas"
            f" WHERE database = '{cluster_database}' AND table = 'events_local'"
        )
        assert path == f"/clickhouse/tables/{node.shard:02d}/{cluster_database}/events_local"

    # Whichever server answers knows what was applied: the records replicate everywhere.
    for node in chcluster.nodes:
        wait_until(
            lambda node=node: _all_applied(node, cluster_database, chcluster.name),
            timeout=30,
            what=f"migrate status on {node.name}",
        )
    assert runner.up() == []

    rolled = runner.down(steps=len(applied))
    assert rolled == list(reversed(applied))
    assert all(not s.applied for s in runner.status())
    assert _tables(chcluster, cluster_database) == [
        {"schema_migrations": LAYOUT["schema_migrations"]}
    ] * len(chcluster.nodes)
    # And up again: the replicas' ZooKeeper paths were released by the drop.
    assert runner.up() == applied


def test_rows_written_through_distributed_land_on_the_shard_of_their_fingerprint(
    chcluster: ClickHouseCluster, cluster_database: str, executor: Executor
) -> None:
    MigrationRunner(executor, MIGRATIONS, cluster_database, cluster=chcluster.name).up()
    db = cluster_database
    executor.execute(
        Statement.text(
            f"INSERT INTO {db}.events (event_id, fingerprint, content, received_at, version)"
            " SELECT generateUUIDv4(), toFixedString(reinterpretAsString(sipHash64(number)), 16),"
            " toFixedString('', 16), now(), 1 FROM system.numbers LIMIT 1000"
        )
    )
    # Synchronous: the insert returned once every shard had its rows, and the view on each
    # shard filled that shard's fingerprints from them.
    [(total,)] = executor.query(Statement.text(f"SELECT count() FROM {db}.event_fingerprints"))
    assert total == 1000
    per_shard = {}
    for node in (n for n in chcluster.nodes if n.replica == 1):
        [(events, fingerprints, elsewhere)] = node.query(
            f"SELECT (SELECT count() FROM {db}.events_local),"
            f" (SELECT count() FROM {db}.event_fingerprints_local),"
            f" (SELECT countIf(sipHash64(fingerprint) % 2 != {node.shard - 1})"
            f" FROM {db}.events_local)"
        )
        per_shard[node.shard] = events
        assert fingerprints == events
        assert elsewhere == 0  # the Distributed table's rule: key % shards picks the shard
    assert sum(per_shard.values()) == 1000
    assert all(count > 0 for count in per_shard.values())
