"""The StoreOverview contract on a ClickHouse 18.16 server and on embedded chDB."""

from __future__ import annotations

import pytest
from dedup.adapters.outbound.clickhouse.event_repository import ClickHouseEventRepository
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.store_overview import ClickHouseStoreOverview

from tests.contracts.event_repository_contract import WINDOW_SECONDS
from tests.contracts.store_overview_contract import StoreOverviewContract

pytestmark = pytest.mark.integration


class OnOneStore(StoreOverviewContract):
    """`store` is a migrated (executor, database); the repository writes what the overview reads."""

    @pytest.fixture
    def repo(self, store: tuple[Executor, str]) -> ClickHouseEventRepository:
        executor, database = store
        return ClickHouseEventRepository(
            executor=executor, database=database, window_seconds=WINDOW_SECONDS
        )

    @pytest.fixture
    def overview(self, store: tuple[Executor, str]) -> ClickHouseStoreOverview:
        executor, database = store
        return ClickHouseStoreOverview(executor=executor, database=database)


class TestOnTheServer(OnOneStore):
    @pytest.fixture
    def store(self, migrated_server: tuple[Executor, str]) -> tuple[Executor, str]:
        return migrated_server


class TestOnChdb(OnOneStore):
    @pytest.fixture
    def store(self, migrated_chdb: tuple[Executor, str]) -> tuple[Executor, str]:
        return migrated_chdb
