"""The ClickHouse adapter: MiniORM, executors (server, chDB), repository, queries, migrations."""

from dedup.adapters.outbound.clickhouse.chdb_executor import ChdbExecutor
from dedup.adapters.outbound.clickhouse.event_repository import (
    ChdbEventRepository,
    ClickHouseEventRepository,
)
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.inspector import ClickHouseInspector
from dedup.adapters.outbound.clickhouse.migration_runner import (
    MigrationError,
    MigrationRunner,
    MigrationStatus,
)
from dedup.adapters.outbound.clickhouse.server_executor import ServerExecutor
from dedup.adapters.outbound.clickhouse.store_overview import ClickHouseStoreOverview
from dedup.adapters.outbound.clickhouse.store_query import ClickHouseStoreQuery
from dedup.adapters.outbound.clickhouse.url import (
    chdb_executor_from_url,
    database_from_url,
    executor_from_url,
    server_executor_from_url,
)

__all__ = [
    "ChdbEventRepository",
    "ChdbExecutor",
    "ClickHouseEventRepository",
    "ClickHouseInspector",
    "ClickHouseStoreOverview",
    "ClickHouseStoreQuery",
    "Executor",
    "MigrationError",
    "MigrationRunner",
    "MigrationStatus",
    "ServerExecutor",
    "chdb_executor_from_url",
    "database_from_url",
    "executor_from_url",
    "server_executor_from_url",
]
