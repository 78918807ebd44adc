"""Fixtures shared by every suite: the in-memory fakes and the use cases built on them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dedup.application.accept_events import AcceptEvents
from dedup.application.deduplicate_event import DeduplicateEvent
from dedup.infrastructure.ids import new_event_id
from hypothesis import HealthCheck, settings

from tests.fakes import FakeEventRepository, FakeHashCache, FakeQueue, FakeStoredFilter

# Hypothesis times its own example generation and each example; on a shared 2-core machine
# under load those clocks measure the neighbours, not the code, so neither may fail a test.
settings.register_profile("dedup", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("dedup")


@pytest.fixture
def cache() -> FakeHashCache:
    return FakeHashCache()


@pytest.fixture
def repo() -> FakeEventRepository:
    return FakeEventRepository()


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()


@pytest.fixture
def seen() -> FakeStoredFilter:
    return FakeStoredFilter.complete()


@pytest.fixture
def deduplicate(
    cache: FakeHashCache, repo: FakeEventRepository, seen: FakeStoredFilter
) -> DeduplicateEvent:
    return DeduplicateEvent(cache=cache, events=repo, seen=seen)


@pytest.fixture
def accept(queue: FakeQueue) -> AcceptEvents:
    return AcceptEvents(
        queue=queue,
        clock=lambda: datetime.now(UTC),
        new_id=new_event_id,
        ignore_fields=frozenset({"sent_at"}),
        id_field="message_id",
    )
