"""What reading every replica costs a lookup, on the tests' cluster (not a test: it prints).

    flock /tmp/cluster.lock .venv/bin/python -m tests.cluster.lookup_latency [STORED]

Stores STORED fingerprints (default 1,000,000) through the Distributed tables, then times, median
of 15, owners() of 20,000 fingerprints (half stored) and contested() of 10,000 stored ones:
through the Distributed tables alone (one replica per shard) and over every replica.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable

from dedup.adapters.outbound.clickhouse.event_repository import ClickHouseEventRepository
from dedup.adapters.outbound.clickhouse.migration_runner import MigrationRunner
from dedup.adapters.outbound.clickhouse.miniorm import Statement
from dedup.adapters.outbound.clickhouse.replicas import EveryReplica
from dedup.adapters.outbound.clickhouse.url import server_executor_from_url
from dedup.domain.fingerprint import EventFingerprint

from tests.clickhouse_cluster import ClickHouseCluster
from tests.e2e.processes import wait_until
from tests.integration.conftest import MIGRATIONS

BATCH, RUNS = 20_000, 15


def _median_ms(call: Callable[[], object]) -> float:
    call()  # connections opened, caches warm
    times = []
    for _ in range(RUNS):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def measure(cluster: ClickHouseCluster, stored: int) -> None:
    database = f"latency_{uuid.uuid4().hex[:8]}"
    url = cluster.url(database)
    executor = server_executor_from_url(url, cluster=cluster.name)
    MigrationRunner(executor, MIGRATIONS, database, cluster=cluster.name).up()
    executor.execute(
        Statement.text(
            f"INSERT INTO {database}.events (event_id, fingerprint, content, received_at, version)"
            " SELECT generateUUIDv4(), toFixedString(reinterpretAsString(sipHash64(number)), 16),"
            f" toFixedString('', 16), now(), 1 FROM system.numbers LIMIT {stored}"
        )
    )

    def replicated() -> bool:
        sql = f"SELECT count() FROM {database}.event_fingerprints_local"
        counts = [int(node.query(sql)[0][0]) for node in cluster.nodes]
        return counts[0] == counts[1] and counts[2] == counts[3] and counts[0] + counts[2] == stored

    wait_until(replicated, timeout=300, what="every replica holding its shard")
    sample = f"SELECT fingerprint FROM {database}.event_fingerprints LIMIT {BATCH // 2}"
    held = [EventFingerprint(row[0]) for row in executor.query(Statement.text(sample))]
    half = held + [EventFingerprint(os.urandom(16)) for _ in range(BATCH - len(held))]
    ways = {
        "distributed": None,
        "every replica": EveryReplica.from_url(url, cluster=cluster.name),
    }
    for name, replicas in ways.items():
        repo = ClickHouseEventRepository(
            executor=server_executor_from_url(url, cluster=cluster.name),
            database=database,
            window_seconds=30 * 86400,
            cluster=cluster.name,
            replicas=replicas,
        )
        assert len(repo.owners(half)) == len(held)
        owners = _median_ms(lambda repo=repo: repo.owners(half))
        contested = _median_ms(lambda repo=repo: repo.contested(held))
        print(
            f"{name:14s} owners({BATCH:,}, half stored) {owners:6.1f} ms"
            f"   contested({len(held):,} stored) {contested:6.1f} ms"
        )
        repo.close()
    print(f"{stored:,} stored; load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    cluster = ClickHouseCluster()
    cluster.start()
    try:
        measure(cluster, int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
