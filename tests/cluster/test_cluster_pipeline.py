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
from tests.e2e.faults import flush_again_and_again, kill_a_worker_mid_batch, settle, wait_stored
from tests.e2e.load import Load
from tests.e2e.processes import wait_until
from tests.redis_cluster import RedisClusterServers

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

OUTAGE_SECONDS = 30
EVENTS = 600


def _on_cluster(make_stack: StackFactory, chcluster: ClickHouseCluster, **extra: str) -> Stack:
    return make_stack(
        workers=2, concurrency=16, clickhouse=chcluster.url(""), cluster=chcluster.name, **extra
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
    load = Load(
        stack.base_url, events=EVENTS, rate=100, spread_seconds=0.3, deadline_seconds=600
    ).start()

    tally = settle(stack, load, drain_timeout=300)
    assert tally.stored == EVENTS
    assert tally.recorded == len(load.ok_ids) - EVENTS
    shards = _rows_per_shard(chcluster, stack.database)
    assert sum(shards.values()) == EVENTS and all(shards.values()), shards
    print(f"\ncluster, {len(load.ok_ids)} copies of {EVENTS} events: {tally}; per shard {shards}")


def test_a_worker_killed_and_every_redis_node_flushed_under_load_store_each_event_once(
    make_stack: StackFactory, chcluster: ClickHouseCluster, redis_cluster: RedisClusterServers
) -> None:
    # Both distributed backends at once: the ClickHouse cluster and the Redis Cluster.
    redis_cluster.flushall()  # this test's stack uses the default key prefix
    stack = _on_cluster(make_stack, chcluster, redis_url=redis_cluster.url)
    load = Load(
        stack.base_url, events=EVENTS, rate=100, spread_seconds=0.3, deadline_seconds=600
    ).start()
    wait_stored(stack, at_least=100)
    kill_a_worker_mid_batch(stack)
    flush_again_and_again(redis_cluster.flushall, seconds=8)  # on every master

    tally = settle(stack, load, drain_timeout=300)
    assert tally.stored == EVENTS
    shards = _rows_per_shard(chcluster, stack.database)
    assert sum(shards.values()) == EVENTS and all(shards.values()), shards
    print(
        f"\ncluster, worker killed and redis flushed: {tally}, races settled:"
        f" {stack.settled_races()}; per shard {shards}"
    )


def test_a_shard_server_stopped_for_30s_under_load_loses_nothing_and_doubles_nothing(
    make_stack: StackFactory, chcluster: ClickHouseCluster
) -> None:
    stack = _on_cluster(make_stack, chcluster)
    # 2,000 events at 40/s: the load runs through the outage and past the server's return.
    load = Load(
        stack.base_url, events=2000, rate=40, spread_seconds=0.3, deadline_seconds=600
    ).start()
    wait_stored(stack, at_least=200)
    # The first replica of shard 1: the one both reads and writes of that shard prefer, and
    # the first host of the URL the processes connect to.
    node = chcluster.node(shard=1, replica=1)
    node.stop(kill=True)
    stopped_at = time.monotonic()
    try:
        down_at = _replica_rows(chcluster, stack.database, 1)
        # The other replica of that shard takes its writes meanwhile: storage goes on.
        wait_until(
            lambda: _replica_rows(chcluster, stack.database, 1) >= down_at + 20,
            timeout=120,
            what="rows stored on shard 1's other replica meanwhile",
        )
        assert stack.dead_letters() == 0, stack.logs()
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))
    finally:
        node.start()
        wait_until(node.ready, timeout=120, what="the stopped server back")

    tally = settle(stack, load, drain_timeout=300)

    def caught_up() -> bool:
        """The server that was away holds what its replica took meanwhile, and no more."""
        shards = _rows_per_shard(chcluster, stack.database)
        replica = _replica_rows(chcluster, stack.database, 1)
        return sum(shards.values()) == load.events and shards[1] == replica

    wait_until(caught_up, timeout=120, what="the returned replica to catch up")
    shards = _rows_per_shard(chcluster, stack.database)
    print(f"\nshard server down {OUTAGE_SECONDS}s: {tally}; rows per shard {shards}")


def _replica_rows(chcluster: ClickHouseCluster, database: str, shard: int) -> int:
    node = chcluster.node(shard=shard, replica=2)
    return int(node.query(f"SELECT count() FROM {database}.events_local FINAL")[0][0])
