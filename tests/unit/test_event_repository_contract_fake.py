"""The EventRepository contract against the in-memory fake, so the fake cannot drift."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from dedup.domain.event import Event
from dedup.domain.outcome import Duplicate

from tests.contracts.event_repository_contract import WINDOW_SECONDS, EventRepositoryContract
from tests.fakes import FakeEventRepository


class TestFakeEventRepository(EventRepositoryContract):
    @pytest.fixture
    def repo(self, now: datetime) -> FakeEventRepository:
        return FakeEventRepository(window_seconds=WINDOW_SECONDS, clock=lambda: now)

    @pytest.fixture
    def stored_events(self, repo: FakeEventRepository) -> Callable[[], list[Event]]:
        return lambda: list(repo.stored)

    @pytest.fixture
    def stored_duplicates(self, repo: FakeEventRepository) -> Callable[[], list[Duplicate]]:
        return lambda: list(repo.duplicates)
