"""The fake HashCache keeps the same contract as the real ones, so unit tests can trust it."""

from __future__ import annotations

import pytest

from tests.contracts.hash_cache_contract import HashCacheContract
from tests.fakes import FakeHashCache


class TestFakeHashCache(HashCacheContract):
    @pytest.fixture
    def cache(self) -> FakeHashCache:
        return FakeHashCache()
