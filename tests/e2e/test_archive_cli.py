"""`dedup archive` and `dedup restore` run as a user runs them, against the ClickHouse server."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bench.processes import clean_environment, dedup
from dedup.adapters.outbound.clickhouse import (
    ClickHouseEventRepository,
    ClickHouseInspector,
)
from dedup.adapters.outbound.clickhouse.url import server_executor_from_url
from dedup.domain.event import Event

from tests.builders import an_event
from tests.servers import CLICKHOUSE_URL, clickhouse_url

pytestmark = pytest.mark.e2e


class Deployment:
    """A database of its own on the local server, and a working directory for the commands."""

    def __init__(self, root: Path) -> None:
        self.database = f"dedup_e2e_{uuid.uuid4().hex[:10]}"
        self.root = root
        self.backups = root / "backups"
        self.env = clean_environment(
            DEDUP_CLICKHOUSE_URL=clickhouse_url(self.database),
            DEDUP_BACKUP_DIR=str(self.backups),
            DEDUP_DATA_DIR=str(root / "var"),
        )
        self.executor = server_executor_from_url(CLICKHOUSE_URL)
        self.inspector = ClickHouseInspector(executor=self.executor, database=self.database)

    def run(self, *args: str) -> str:
        return dedup(*args, env=self.env, cwd=self.root)

    def save(self, events: list[Event]) -> None:
        repo = ClickHouseEventRepository(
            executor=self.executor, database=self.database, window_seconds=30 * 86400
        )
        repo.save(events=events, duplicates=[])

    def archives(self) -> list[Path]:
        return sorted(self.backups.rglob("events-*.jsonl.gz"))


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    deployed = Deployment(tmp_path)
    deployed.run("migrate", "up")
    yield deployed
    deployed.executor.close()
    server_executor_from_url(CLICKHOUSE_URL)._run(f"DROP DATABASE IF EXISTS `{deployed.database}`")


def test_old_days_are_archived_to_verified_files_purged_and_restored_once(
    deployment: Deployment,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    old = [an_event(received_at=now - timedelta(days=d)) for d in (12, 11, 11, 10, 10, 10)]
    fresh = [an_event(received_at=now) for _ in range(2)]
    deployment.save(old + fresh)

    plan = deployment.run("archive", "--dry-run")
    assert deployment.inspector.count("events") == 8, plan
    assert deployment.archives() == []

    deployment.run("archive")
    files = deployment.archives()
    assert len(files) == 3  # one file per day
    rows = [
        json.loads(line) for f in files for line in gzip.decompress(f.read_bytes()).splitlines()
    ]
    assert sorted(r["event_id"] for r in rows) == sorted(str(e.event_id) for e in old)
    manifests = [
        json.loads(f.with_name(f.name.replace(".jsonl.gz", ".manifest.json")).read_text())
        for f in files
    ]
    assert sum(m["rows"] for m in manifests) == len(old)
    assert {e.event_id for e in deployment.inspector.events()} == {e.event_id for e in fresh}

    # dedup outlives the purge: the fingerprints of archived events are still known
    known = {fp for fp, _ in deployment.inspector.fingerprint_rows()}
    assert {e.fingerprint.digest for e in old} <= known

    deployment.run("archive")  # nothing left to do: nothing changes
    assert deployment.archives() == files

    deployment.run("restore", *map(str, files))
    deployment.run("restore", *map(str, files))  # twice: stores nothing twice
    restored = deployment.inspector.events()
    assert sorted(e.event_id for e in restored) == sorted(e.event_id for e in old + fresh)
    assert deployment.inspector.count("events", final=False) == len(old + fresh)


def test_a_truncated_archive_is_refused_before_anything_is_written(
    deployment: Deployment, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    old = [an_event(received_at=now - timedelta(days=9)) for _ in range(50)]
    deployment.save(old)
    deployment.run("archive")
    (archive,) = deployment.archives()
    truncated = tmp_path / archive.name
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    truncated.with_name(truncated.name.replace(".jsonl.gz", ".manifest.json")).write_bytes(
        archive.with_name(archive.name.replace(".jsonl.gz", ".manifest.json")).read_bytes()
    )

    with pytest.raises(AssertionError, match="restore"):
        deployment.run("restore", str(truncated))
    assert deployment.inspector.count("events", final=False) == 0
