"""The broker as a three-node RabbitMQ cluster with quorum queues: a node killed -9 under load.

DEDUP_BROKER_URL lists the three nodes (DESIGN.md §6.2). The API and the worker both start on
the first; it is killed, both move on to another node, the quorum queue elects a new leader
among the two left, and every "ok" is stored exactly once with nothing dead-lettered. The
cluster is our own (tests/rabbitmq_cluster.py): the shared broker on 5672 is not touched.
"""

from __future__ import annotations

import time

import httpx
import psutil
import pytest
from bench.processes import Process

from tests.e2e.conftest import Broker, StackFactory
from tests.e2e.faults import settle, wait_stored
from tests.e2e.load import Load
from tests.e2e.processes import wait_until
from tests.rabbitmq_cluster import RabbitCluster, RabbitNode

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(900)]


def broker_ports(process: Process, cluster: RabbitCluster) -> set[int]:
    """The cluster's AMQP ports the process (or a child of it) holds a connection to now."""
    ports = {node.port for node in cluster.nodes}
    found: set[int] = set()
    root = psutil.Process(process.popen.pid)
    for member in [root, *root.children(recursive=True)]:
        try:
            connections = member.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        found |= {
            c.raddr.port
            for c in connections
            if c.raddr and c.raddr.port in ports and c.status == psutil.CONN_ESTABLISHED
        }
    return found


def node_on(port: int, cluster: RabbitCluster) -> RabbitNode:
    return next(node for node in cluster.nodes if node.port == port)


def test_the_node_the_api_and_worker_use_killed_under_load_is_failed_over_exactly_once(
    make_stack: StackFactory, rabbitmq_cluster: RabbitCluster, cluster_broker: Broker
) -> None:
    cluster = rabbitmq_cluster
    stack = make_stack(broker=cluster_broker, queue_type="quorum")
    # Each "ok" waits for a quorum confirm (two nodes' fsync): far slower on a shared machine
    # than the shared broker's, so fewer events, and a deadline that waits for them all.
    load = Load(stack.base_url, events=1000, rate=50, deadline_seconds=480).start()
    wait_stored(stack)
    api, worker = stack.api, stack.workers[0]
    # Both start on the first node of the list: one node holds every connection of both.
    (port,) = wait_until(
        lambda: broker_ports(api, cluster) | broker_ports(worker, cluster),
        timeout=30,
        what="the API and the worker to hold broker connections",
    )
    assert broker_ports(api, cluster) == broker_ports(worker, cluster) == {port}
    victim = node_on(port, cluster)

    killed = time.monotonic()
    victim.kill()
    try:
        wait_until(
            lambda: broker_ports(api, cluster) - {port} and broker_ports(worker, cluster) - {port},
            timeout=120,
            what="the API and the worker to connect to another node",
        )
        moved = time.monotonic() - killed
        api_now, worker_now = broker_ports(api, cluster), broker_ports(worker, cluster)
        assert port not in api_now | worker_now
        assert not load.done, "the node went after the load had ended: no failover under load"
        ready = httpx.get(f"{stack.base_url}/health/ready", timeout=10)
        assert (ready.status_code, ready.json()["checks"]["broker"]) == (200, "ok"), ready.text
    finally:
        victim.start()
        victim.wait_serving()
    assert sorted(cluster.running()) == sorted(node.name for node in cluster.nodes)

    tally = settle(stack, load, drain_timeout=180)
    assert api.popen.poll() is None, "the API did not survive the node's crash"
    assert worker.popen.poll() is None, "the worker did not survive the node's crash"
    refused = [at - killed for at in load.refused_at if at >= killed]
    refusing = f"{refused[-1] - refused[0]:.2f}s" if refused else "never"
    print(
        f"\nbroker node {victim.name} killed -9 under load: {tally}; ok'd {len(load.ok_ids)},"
        f" distinct events {load.events}, copies sent {load.copies_sent}, dead letters 0;"
        f" API and worker on ports {sorted(api_now)}/{sorted(worker_now)} after {moved:.1f}s;"
        f" 503s after the kill: {len(refused)} ({refusing} from first to last);"
        f" answers {dict(load.answers)}"
    )
