"""What a client hears when a batch fails, through the real app and the embedded queue."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

import pytest
from dedup.adapters.outbound.memory_queue import MemoryQueue
from dedup.application.accept_events import AcceptEvents
from dedup.application.deduplicate_event import DeduplicateEvent
from dedup.domain.event import Event
from dedup.domain.fingerprint import EventFingerprint
from dedup.infrastructure.app import create_app
from dedup.infrastructure.ids import new_event_id
from litestar.testing import TestClient

from tests.fakes import FakeEventRepository, FakeHashCache, FakeStoredFilter

ONE = "/service-event/"
Handler = Callable[[Sequence[Event]], object]


@pytest.fixture
def repo() -> FakeEventRepository:
    return FakeEventRepository()


@pytest.fixture
def serve(repo: FakeEventRepository) -> Iterator[Callable[..., TestClient]]:
    """A client of the app over a started MemoryQueue (DeduplicateEvent on the fakes, or
    the handler given)."""
    queues: list[MemoryQueue] = []

    def start(handler: Handler | None = None) -> TestClient:
        deduplicate = DeduplicateEvent(cache=FakeHashCache(), events=repo, seen=FakeStoredFilter())
        queue = MemoryQueue(handler or deduplicate.execute, retry_delays=(0.01,))
        queue.start()
        queues.append(queue)
        accept_events = AcceptEvents(
            queue=queue, clock=lambda: datetime.now(UTC), new_id=new_event_id, id_field="message_id"
        )
        return TestClient(create_app(accept_events=accept_events, probes={}))

    yield start
    for queue in queues:
        queue.stop(timeout=2)


def test_an_event_the_store_refuses_answers_422_and_the_others_are_stored(serve, repo) -> None:
    poison: dict[str, object] = {"refused": "always"}
    repo.refuses = {EventFingerprint.of(poison, ignore=frozenset())}

    with serve() as client:
        refused = client.post(ONE, json=poison)
        fine = client.post(ONE, json={"fine": True})

    assert refused.status_code == 422  # the client must not send it again as it is
    assert refused.json()["error"] == "event_refused"
    assert "retry-after" not in refused.headers
    assert fine.status_code == 200
    assert [event.payload for event in repo.stored] == ['{"fine":true}']


def test_a_store_outage_answers_503_with_retry_after(serve, repo) -> None:
    repo.down = True

    with serve() as client:
        response = client.post(ONE, json={"a": 1})

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "service_unavailable"
    assert repo.stored == []


def test_a_bug_behind_the_queue_answers_500_with_its_traceback_logged_not_503(
    serve, repo, caplog
) -> None:
    def buggy(batch: Sequence[Event]) -> None:
        raise KeyError("a bug")

    with caplog.at_level(logging.ERROR), serve(buggy) as client:
        response = client.post(ONE, json={"a": 1})

    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    logged = [record for record in caplog.records if record.exc_info]
    assert [type(record.exc_info[1]) for record in logged] == [KeyError]  # type: ignore[index]
