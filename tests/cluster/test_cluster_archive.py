"""`dedup archive` and `dedup restore` on the cluster: every shard purged, restored once."""

from __future__ import annotations

import gzip
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bench.processes import clean_environment, dedup
from dedup.adapters.outbound.clickhouse import ClickHouseEventRepository, ClickHouseInspector
from dedup.adapters.outbound.clickhouse.url import server_executor_from_url

from tests.builders import an_event
from tests.clickhouse_cluster import ClickHouseCluster
from tests.e2e.processes import wait_until

pytestmark = pytest.mark.cluster


def _local_rows(chcluster: ClickHouseCluster, database: str, table: str) -> dict[str, int]:
    """Rows of `<table>_local` on every server, by server name."""
    sql = f"SELECT count() FROM {database}.{table}_local"
    return {node.name: int(node.query(sql)[0][0]) for node in chcluster.nodes}


def test_old_days_are_archived_from_every_shard_purged_and_restored_once(
    chcluster: ClickHouseCluster, tmp_path: Path
) -> None:
    database = f"dedup_c{uuid.uuid4().hex[:10]}"
    env = clean_environment(
        DEDUP_CLICKHOUSE_URL=chcluster.url(database),
        DEDUP_CLICKHOUSE_CLUSTER=chcluster.name,
        DEDUP_BACKUP_DIR=str(tmp_path / "backups"),
        DEDUP_DATA_DIR=str(tmp_path / "var"),
    )
    dedup("migrate", "up", env=env, cwd=tmp_path)
    executor = server_executor_from_url(chcluster.url(database), cluster=chcluster.name)
    inspector = ClickHouseInspector(executor=executor, database=database)
    now = datetime.now(UTC).replace(microsecond=0)
    old = [an_event(received_at=now - timedelta(days=10 + n % 3)) for n in range(60)]
    fresh = [an_event(received_at=now) for _ in range(20)]
    repo = ClickHouseEventRepository(
        executor=executor, database=database, window_seconds=30 * 86400, cluster=chcluster.name
    )
    repo.save(events=old + fresh, duplicates=[])
    # Each row on both replicas of its shard before counting: the insert returns once one has it.
    wait_until(
        lambda: sum(_local_rows(chcluster, database, "events").values()) == 2 * len(old + fresh),
        timeout=30,
        what="the rows replicated to every replica",
    )
    before = _local_rows(chcluster, database, "events")
    assert all(before.values()), before  # both shards, and both replicas of each, hold rows

    dedup("archive", env=env, cwd=tmp_path)
    files = sorted((tmp_path / "backups").rglob("events-*.jsonl.gz"))
    assert len(files) == 3  # one file per day, each with the rows of every shard
    archived = sum(len(gzip.decompress(f.read_bytes()).splitlines()) for f in files)
    assert archived == len(old)
    # Purged from every shard and every replica: only the fresh day is left anywhere.
    assert {e.event_id for e in inspector.events()} == {e.event_id for e in fresh}
    wait_until(
        lambda: sum(_local_rows(chcluster, database, "events").values()) == 2 * len(fresh),
        timeout=30,
        what="the drop replicated to every replica",
    )
    # The fingerprints outlive the purge, on their shards.
    known = {fp for fp, _ in inspector.fingerprint_rows()}
    assert {e.fingerprint.digest for e in old} <= known

    dedup("restore", *map(str, files), env=env, cwd=tmp_path)
    dedup("restore", *map(str, files), env=env, cwd=tmp_path)  # twice: nothing twice
    restored = inspector.events()
    assert sorted(e.event_id for e in restored) == sorted(e.event_id for e in old + fresh)
    assert inspector.count("events", final=False) == len(old + fresh)
    # Restored through the Distributed table: each row went back to the shard of its fingerprint.
    wait_until(
        lambda: _local_rows(chcluster, database, "events") == before,
        timeout=30,
        what="the restored rows on every replica of their shard",
    )
    executor.close()
