"""The cluster tests' own ClickHouse cluster, started once per run (tests/clickhouse_cluster.py).

The e2e fixtures (make_stack) come along, so a stack can be put on the cluster; its Redis and
queue are its own as in tests/e2e.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.clickhouse_cluster import ClickHouseCluster
from tests.e2e.conftest import make_stack  # noqa: F401 (a fixture, used by name)


@pytest.fixture(scope="session")
def chcluster() -> Iterator[ClickHouseCluster]:
    cluster = ClickHouseCluster()
    cluster.start()
    print(f"\nchcluster: ZooKeeper + {len(cluster.nodes)} servers up in {cluster.started_in:.1f} s")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_database() -> str:
    return f"dedup_c{uuid.uuid4().hex[:10]}"
