"""The pipeline on a Redis Cluster of the test run's own, under load and faults: a worker
killed -9, every node flushed again and again, a master killed and replaced by its replica
(the claims it had not passed on are lost). Afterwards each event is stored once."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import StackFactory
from tests.e2e.faults import flush_again_and_again, kill_a_worker_mid_batch, settle, wait_stored
from tests.e2e.load import Load
from tests.e2e.processes import wait_until
from tests.redis_cluster import RedisClusterServers

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(600)]


def test_on_a_redis_cluster_kills_flushes_and_a_failover_under_load_store_each_event_once(
    make_stack: StackFactory, redis_cluster: RedisClusterServers
) -> None:
    redis_cluster.flushall()  # this test's stack uses the default key prefix
    stack = make_stack(workers=2, redis_url=redis_cluster.url)
    ready = httpx.get(f"{stack.base_url}/health/ready", timeout=10).json()
    assert ready["checks"]["cache"] == "ok", ready  # the readiness probe pings every node
    wait_until(redis_cluster.filters_complete, timeout=60, what="the stored filter in use")

    load = Load(stack.base_url, events=1200, rate=100, spread_seconds=0.3).start()
    wait_stored(stack)
    kill_a_worker_mid_batch(stack)
    flush_again_and_again(redis_cluster.flushall, seconds=5)  # on every master

    # A master crashes; after the node timeout its replica is promoted without the writes it
    # had not received yet. The crashed node comes back as a replica of the new master.
    master = redis_cluster.masters()[0]
    replica = redis_cluster.replica_of(master)
    redis_cluster.kill_node(master)
    wait_until(lambda: replica in redis_cluster.masters(), timeout=30, what="the replica promoted")
    redis_cluster.wait_healthy()
    redis_cluster.start_node(master)
    workers = list(stack.workers)

    tally = settle(stack, load, drain_timeout=120)
    assert all(worker.popen.poll() is None for worker in workers)  # rode it out
    # The filter, lost with everything else and then on the promoted node, was refilled.
    wait_until(redis_cluster.filters_complete, timeout=60, what="the stored filter refilled")
    claims = redis_cluster.keys_per_master("dedup:[0-9a-f]*")
    assert len(claims) == 3 and min(claims.values()) > 0, claims
    print(
        f"\nredis cluster: worker killed, flushed, master {master} failed over to {replica}:"
        f" {tally}, races settled: {stack.settled_races()}, claims per master: {claims}"
    )
