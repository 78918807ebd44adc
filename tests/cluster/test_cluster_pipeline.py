"""The whole pipeline on the cluster: real `dedup serve` and two `dedup worker` processes.

Each stack has its own database on the cluster (DEDUP_CLICKHOUSE_CLUSTER, a URL naming every
server), and its own queue and Redis on the shared RabbitMQ as in tests/e2e. The accounting is
read through the Distributed tables.
"""

from __future__ import annotations

import time

import pytest

from tests.clickhouse_cluster import ClickHouseCluster
from tests.e2e.conftest import Stack, StackFactory
from tests.e2e.faults import settle, wait_stored
from tests.e2e.load import Load
from tests.e2e.processes import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

OUTAGE_SECONDS = 30


def _on_cluster(make_stack: StackFactory, chcluster: ClickHouseCluster) -> Stack:
    return make_stack(
        workers=2, concurrency=16, clickhouse=chcluster.url(""), cluster=chcluster.name
    )


def _rows_per_shard(chcluster: ClickHouseCluster, database: str) -> dict[int, int]:
    """Rows of events_local on each shard, read on its first replica."""
    return {
        node.shard: int(node.query(f"SELECT count() FROM {database}.events_local FINAL")[0][0])
        for node in chcluster.nodes
        if node.replica == 1
    }


def test_concurrent_copies_through_two_workers_are_stored_once_across_the_cluster(
    make_stack: StackFactory, chcluster: ClickHouseCluster
) -> None:
    stack = _on_cluster(make_stack, chcluster)
    assert stack.consumers() == 2
    load = Load(stack.base_url, events=1000, rate=200, max_copies=3, spread_seconds=0.3).start()

    tally = settle(stack, load)
    assert tally.stored == 1000
    assert tally.recorded == len(load.ok_ids) - 1000
    shards = _rows_per_shard(chcluster, stack.database)
    assert sum(shards.values()) == 1000 and all(shards.values()), shards
    print(f"\ncluster, {len(load.ok_ids)} copies of 1000 events: {tally}; rows per shard {shards}")


def test_a_shard_server_stopped_for_30s_under_load_loses_nothing_and_doubles_nothing(
    make_stack: StackFactory, chcluster: ClickHouseCluster
) -> None:
    stack = _on_cluster(make_stack, chcluster)
    # 3,000 events at 50/s: the load runs through the outage and past the server's return.
    load = Load(stack.base_url, events=3000, rate=50, max_copies=3, spread_seconds=0.3).start()
    wait_stored(stack, at_least=200)
    # The first replica of shard 1: the one both reads and writes of that shard prefer, and
    # the first host of the URL the processes connect to.
    node = chcluster.node(shard=1, replica=1)
    node.stop(kill=True)
    try:
        down_at = stack.stored()
        # The other replica takes the shard's writes meanwhile: storage goes on.
        wait_until(
            lambda: stack.stored() >= down_at + 200, timeout=30, what="rows stored meanwhile"
        )
        assert stack.dead_letters() == 0, stack.logs()
        time.sleep(max(0.0, OUTAGE_SECONDS - 5))
    finally:
        node.start()
        wait_until(node.ready, timeout=120, what="the stopped server back")

    tally = settle(stack, load, drain_timeout=180)
    shards = _rows_per_shard(chcluster, stack.database)
    # The server that was away caught up with what its replica took meanwhile.
    wait_until(
        lambda: (
            _rows_per_shard(chcluster, stack.database) == shards
            and _replica_rows(chcluster, stack.database, 1) == shards[1]
        ),
        timeout=60,
        what="the returned replica to catch up",
    )
    print(f"\nshard server down {OUTAGE_SECONDS}s: {tally}; rows per shard {shards}")


def _replica_rows(chcluster: ClickHouseCluster, database: str, shard: int) -> int:
    node = chcluster.node(shard=shard, replica=2)
    return int(node.query(f"SELECT count() FROM {database}.events_local FINAL")[0][0])
