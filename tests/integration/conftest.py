"""Fixtures for the integration suites, one section per backend."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.outbound.clickhouse.executors import ChdbExecutor, Executor, ServerExecutor
from adapters.outbound.clickhouse.migration_runner import MigrationRunner
from adapters.outbound.clickhouse.miniorm import Statement, ident
from adapters.outbound.clickhouse.url import server_executor_from_url
from domain.errors import BackendUnavailableError

# --- clickhouse: per-test databases on the server, per-test directories for chDB ---

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
CLICKHOUSE_URL = os.environ.get(
    "DEDUP_TEST_CLICKHOUSE_URL", "clickhouse://default:@127.0.0.1:9000/"
)


def unique_database() -> str:
    return f"dedup_test_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def clickhouse_server() -> Iterator[ServerExecutor]:
    """A server executor, once the server answers (scripts/ensure-clickhouse.sh starts one)."""
    executor = server_executor_from_url(CLICKHOUSE_URL)
    deadline = time.monotonic() + 30
    while True:
        try:
            executor.query(Statement.text("SELECT 1"))
            break
        except BackendUnavailableError:
            if time.monotonic() > deadline:
                hint = "run scripts/ensure-clickhouse.sh"
                pytest.fail(f"ClickHouse at {CLICKHOUSE_URL} did not answer; {hint}")
            time.sleep(0.5)
    yield executor
    executor.close()


@pytest.fixture
def server_database(clickhouse_server: ServerExecutor) -> Iterator[str]:
    """A fresh database name on the server, dropped afterwards (only this test's database)."""
    database = unique_database()
    yield database
    clickhouse_server.execute(Statement.text(f"DROP DATABASE IF EXISTS {ident(database)}"))


@pytest.fixture
def migrated_server(
    clickhouse_server: ServerExecutor, server_database: str
) -> tuple[Executor, str]:
    MigrationRunner(clickhouse_server, MIGRATIONS, server_database).up()
    return clickhouse_server, server_database


@pytest.fixture
def chdb_executor(tmp_path: Path) -> Iterator[ChdbExecutor]:
    """chDB in this test's own directory; closed after, since a process holds one path at a time."""
    executor = ChdbExecutor(path=str(tmp_path / "chdb"))
    yield executor
    executor.close()


@pytest.fixture
def migrated_chdb(chdb_executor: ChdbExecutor) -> tuple[Executor, str]:
    database = unique_database()
    MigrationRunner(chdb_executor, MIGRATIONS, database).up()
    return chdb_executor, database
