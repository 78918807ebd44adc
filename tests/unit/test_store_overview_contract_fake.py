"""The StoreOverview contract against the in-memory fake, so the fake cannot drift."""

from __future__ import annotations

import pytest

from tests.contracts.store_overview_contract import StoreOverviewContract
from tests.fakes import FakeEventRepository


class TestFakeStoreOverview(StoreOverviewContract):
    @pytest.fixture
    def repo(self) -> FakeEventRepository:
        return FakeEventRepository()

    @pytest.fixture
    def overview(self, repo: FakeEventRepository) -> FakeEventRepository:
        return repo
