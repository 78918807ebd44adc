"""`dedup archive` and `dedup restore` as the CLI runs them, against the 18.16 server."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dedup.adapters.outbound.clickhouse.event_repository import ClickHouseEventRepository
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.inspector import ClickHouseInspector
from dedup.adapters.outbound.file_lock import FileLock
from dedup.domain.event import Event
from dedup.infrastructure.archive_commands import archive, lock_path, restore
from dedup.infrastructure.settings import Settings

from tests.builders import an_event
from tests.servers import clickhouse_url

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(migrated_server: tuple[Executor, str], tmp_path: Path) -> Settings:
    _executor, database = migrated_server
    return Settings(
        clickhouse_url=clickhouse_url(database),
        data_dir=tmp_path / "var",
        backup_dir=tmp_path / "backups",
    )


@pytest.fixture
def inspector(migrated_server: tuple[Executor, str]) -> ClickHouseInspector:
    return ClickHouseInspector(*migrated_server)


@pytest.fixture
def old_events(migrated_server: tuple[Executor, str]) -> list[Event]:
    executor, database = migrated_server
    now = datetime.now(UTC).replace(microsecond=0)
    events = [an_event(received_at=now - timedelta(days=d)) for d in (12, 11, 11, 3)]
    repo = ClickHouseEventRepository(
        executor=executor, database=database, window_seconds=86400 * 30
    )
    repo.save(events=events, duplicates=[])
    return events


def run_archive(settings: Settings, **options: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    kwargs = {"older_than": None, "dry_run": False} | options
    code = archive(settings, out=out, err=err, **kwargs)  # type: ignore[arg-type]
    return code, out.getvalue(), err.getvalue()


def run_restore(settings: Settings, files: list[Path]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = restore(settings, files, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_a_dry_run_prints_the_plan_in_plain_lines_and_changes_nothing(
    settings: Settings, old_events: list[Event], inspector: ClickHouseInspector
) -> None:
    code, out, _ = run_archive(settings, dry_run=True)

    assert code == 0
    assert out.count("would export, verify, drop: events") == 2
    assert "would archive 2 partitions (3 rows)" in out
    assert len(inspector.events()) == 4
    assert not settings.backups.exists()


def test_archive_then_restore_twice_through_the_commands(
    settings: Settings, old_events: list[Event], inspector: ClickHouseInspector
) -> None:
    code, out, err = run_archive(settings)
    assert (code, err) == (0, "")
    assert "archived 2 partitions (3 rows)" in out
    assert [e.event_id for e in inspector.events()] == [old_events[3].event_id]
    files = sorted(settings.backups.glob("*.jsonl.gz"))
    assert len(files) == 2

    first = run_restore(settings, files)
    second = run_restore(settings, files)

    assert first[0] == 0 and "3 of 3 rows inserted" in first[1]
    assert second[0] == 0 and "0 of 3 rows inserted" in second[1]
    assert len(inspector.events()) == 4


def test_older_than_overrides_the_retention(
    settings: Settings, old_events: list[Event], inspector: ClickHouseInspector
) -> None:
    code, out, _ = run_archive(settings, older_than=timedelta(days=2))

    assert code == 0
    assert "archived 3 partitions (4 rows)" in out
    assert inspector.events() == []


def test_a_second_run_while_one_holds_the_lock_says_so_and_exits_0_at_once(
    settings: Settings, old_events: list[Event], inspector: ClickHouseInspector
) -> None:
    holder = FileLock(lock_path(settings))
    assert holder.acquire()
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        # The lock stays held until the run returns: a run that waited for it would not
        # return, so the deadline bounds only that failure.
        code, out, _ = pool.submit(run_archive, settings).result(timeout=60)
    finally:
        holder.release()
        pool.shutdown()

    assert code == 0
    assert "already running" in out
    assert len(inspector.events()) == 4


def test_restore_refuses_a_corrupt_file_and_writes_nothing(
    settings: Settings, old_events: list[Event], inspector: ClickHouseInspector
) -> None:
    run_archive(settings)
    files = sorted(settings.backups.glob("*.jsonl.gz"))
    files[0].write_bytes(files[0].read_bytes()[:-8])  # the gzip trailer lost

    code, _, err = run_restore(settings, files)

    assert code == 1
    assert "refused" in err and "corrupt or truncated" in err
    assert len(inspector.events()) == 1


def test_restore_refuses_a_file_without_its_manifest(
    settings: Settings, tmp_path: Path, inspector: ClickHouseInspector
) -> None:
    stray = tmp_path / "events-2026-01-01.jsonl.gz"
    stray.write_bytes(b"")

    code, _, err = run_restore(settings, [stray])

    assert code == 1
    assert "no manifest" in err
