"""The fake stored filter keeps the same contract as the Redis one, so unit tests can trust it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.contracts.stored_filter_contract import StoredFilterContract
from tests.fakes import FakeStoredFilter


class TestFakeStoredFilter(StoredFilterContract):
    @pytest.fixture
    def seen(self) -> FakeStoredFilter:
        return FakeStoredFilter()

    @pytest.fixture
    def lose(self, seen: FakeStoredFilter) -> Callable[[], None]:
        return seen.lose
