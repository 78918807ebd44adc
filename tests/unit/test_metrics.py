"""Metrics: GET /metrics in Prometheus text, and every counter moves with the traffic it counts.

The instruments are process-wide (as Prometheus metrics are), so each test reads a value
before and after and asserts on the difference.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime

import pytest
from dedup.adapters.inbound.http.metrics_controller import metrics_route
from dedup.adapters.metrics import CONTENT_TYPE, DepthProbe, start_worker_metrics_server
from dedup.adapters.outbound.memory_queue import MemoryQueue
from dedup.adapters.outbound.timed_event_repository import TimedEventRepository
from dedup.application.accept_events import AcceptEvents
from dedup.application.deduplicate_event import DeduplicateEvent
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event
from dedup.infrastructure.app import create_app
from dedup.infrastructure.ids import new_event_id
from dedup.infrastructure.metrics_dir import ENV, prepare_metrics_dir
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.builders import a_copy_of, an_event
from tests.fakes import FakeEventRepository, FakeHashCache, FakeQueue, FakeStoredFilter
from tests.scrape import value

ONE = "/service-event/"
BATCH = "/service-event/batch"


def client_for(
    queue: FakeQueue,
    *,
    depth: DepthProbe | None = None,
    api_keys: Mapping[str, str] | None = None,
) -> TestClient:
    accept_events = AcceptEvents(queue=queue, clock=lambda: datetime.now(UTC), new_id=new_event_id)
    app = create_app(
        accept_events=accept_events,
        probes={},
        api_keys=api_keys or {},
        extra_route_handlers=[metrics_route(depth=depth)],
    )
    return TestClient(app)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with client_for(FakeQueue()) as client:
        yield client


def test_metrics_answers_prometheus_text_version_0_0_4(client):
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "dedup_events_stored",
        "dedup_batch_size",
        "dedup_publish_seconds",
        "dedup_insert_seconds",
        "dedup_retries",
        "dedup_dead_letters",
    } <= names


def test_accepted_events_are_counted_per_endpoint_as_the_scrape_shows(client):
    single = {"endpoint": "single"}
    batch = {"endpoint": "batch"}
    before = client.get("/metrics").text

    assert client.post(ONE, json={"n": 1}).status_code == 200
    assert client.post(ONE, json={"n": 2}).status_code == 200
    assert client.post(BATCH, json=[{"n": 3}, {"n": 4}, {"n": 5}]).status_code == 200

    after = client.get("/metrics").text
    accepted = "dedup_events_accepted_total"
    assert value(accepted, single, text=after) - value(accepted, single, text=before) == 2
    assert value(accepted, batch, text=after) - value(accepted, batch, text=before) == 3


def test_a_refused_request_counts_as_rejected_under_its_code_and_not_as_accepted():
    queue = FakeQueue()
    with client_for(queue, api_keys={"web": "s3cret"}) as client:
        accepted = value("dedup_events_accepted_total", {"endpoint": "single"})
        unauthorized = value("dedup_requests_rejected_total", {"code": "unauthorized"})
        invalid = value("dedup_requests_rejected_total", {"code": "invalid_json"})

        assert client.post(ONE, json={"n": 1}).status_code == 401
        key = {"X-API-Key": "s3cret"}
        assert client.post(ONE, content=b"{nope", headers=key).status_code == 400

        assert value("dedup_requests_rejected_total", {"code": "unauthorized"}) == unauthorized + 1
        assert value("dedup_requests_rejected_total", {"code": "invalid_json"}) == invalid + 1
        assert value("dedup_events_accepted_total", {"endpoint": "single"}) == accepted
        assert queue.queued == []


def test_a_broker_outage_counts_as_a_503_rejection():
    queue = FakeQueue(down=True)
    with client_for(queue) as client:
        before = value("dedup_requests_rejected_total", {"code": "service_unavailable"})
        assert client.post(ONE, json={"n": 1}).status_code == 503
        after = value("dedup_requests_rejected_total", {"code": "service_unavailable"})
    assert after == before + 1


def test_the_queue_depth_is_asked_at_each_scrape():
    depths = iter([{"events": 7, "dead_letters": 1}, {"events": 2, "dead_letters": 0}])
    with client_for(FakeQueue(), depth=lambda: next(depths)) as client:
        first = client.get("/metrics").text
        second = client.get("/metrics").text

    assert value("dedup_queue_depth", {"queue": "events"}, text=first) == 7
    assert value("dedup_queue_depth", {"queue": "dead_letters"}, text=first) == 1
    assert value("dedup_queue_depth", {"queue": "events"}, text=second) == 2


def test_an_unreachable_broker_leaves_the_depth_out_and_the_scrape_still_answers():
    def unreachable() -> dict[str, int]:
        raise BackendUnavailableError("broker", "connection refused")

    with client_for(FakeQueue(), depth=unreachable) as client:
        response = client.get("/metrics")

    assert response.status_code == 200
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert "dedup_queue_depth" not in names
    assert "dedup_events_stored" in names


@pytest.fixture
def started() -> Iterator[Callable[..., MemoryQueue]]:
    queues: list[MemoryQueue] = []

    def start(handler: Callable[[Sequence[Event]], object], **options: object) -> MemoryQueue:
        queue = MemoryQueue(handler, max_wait_seconds=0.01, **options)  # type: ignore[arg-type]
        queue.start()
        queues.append(queue)
        return queue

    yield start
    for queue in queues:
        queue.stop(timeout=2)


def put(queue: MemoryQueue, events: Sequence[Event]) -> None:
    asyncio.run(queue.put(events))


def test_a_deduplicated_batch_moves_stored_duplicates_and_batch_metrics(started):
    repo = FakeEventRepository()
    deduplicate = DeduplicateEvent(
        cache=FakeHashCache(), events=TimedEventRepository(repo), seen=FakeStoredFilter()
    )
    queue = started(deduplicate.execute)
    first, other = an_event(), an_event()
    names = [
        ("dedup_events_stored_total", None),
        ("dedup_duplicates_total", {"kind": "content"}),
        ("dedup_events_processed_total", {"outcome": "stored"}),
        ("dedup_events_processed_total", {"outcome": "duplicate"}),
        ("dedup_batch_size_count", None),
        ("dedup_batch_size_sum", None),
        ("dedup_batch_seconds_count", None),
        ("dedup_insert_seconds_count", None),
        ("dedup_lookup_seconds_count", None),
    ]
    before = [value(name, labels) for name, labels in names]

    put(queue, [first, a_copy_of(first), other])
    assert queue.drain(5)

    moved = [value(name, labels) - was for (name, labels), was in zip(names, before, strict=True)]
    assert moved[:7] == [2, 1, 2, 1, 1, 3, 1]
    assert (
        moved[7] >= 1 and moved[8] >= 1
    )  # how many saves and lookups a batch takes is the use case's
    assert len(repo.stored) == 2


def test_retries_are_counted_and_depth_shows_the_events_waiting(started):
    tries: list[int] = []
    third_try = threading.Event()
    release = threading.Event()

    def unavailable_twice(batch: Sequence[Event]) -> None:
        tries.append(len(batch))
        if len(tries) <= 2:
            raise BackendUnavailableError("clickhouse")
        third_try.set()
        assert release.wait(30), "the test never released the batch"

    retries = value("dedup_retries_total")
    queue = started(unavailable_twice, retry_delays=(0.01, 0.01))
    waiting = threading.Thread(target=put, args=(queue, [an_event(), an_event()]))
    waiting.start()
    assert third_try.wait(30)  # the third try holds the batch until released

    assert queue.depth() == {"events": 2}
    release.set()
    waiting.join(30)
    assert not waiting.is_alive()
    assert value("dedup_retries_total") == retries + 2
    assert queue.depth() == {"events": 0}


def test_the_worker_metrics_server_answers_a_scrape_on_its_port():
    server = start_worker_metrics_server(0, addr="127.0.0.1")  # port 0: any free port
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert "dedup_events_stored" in {f.name for f in text_string_to_metric_families(text)}


MULTIPROCESS_RUN = textwrap.dedent(
    """
    import multiprocessing, sys
    from pathlib import Path

    from dedup.infrastructure.metrics_dir import prepare_metrics_dir

    def child(events):
        from dedup.adapters.metrics import record_accepted, record_retry

        record_accepted(events, batch=True)
        record_retry()

    if __name__ == "__main__":
        prepare_metrics_dir(Path(sys.argv[1]))  # before any metric exists, as `dedup` does
        from dedup.adapters.metrics import record_accepted, render

        context = multiprocessing.get_context("fork")
        children = [context.Process(target=child, args=(n,)) for n in (3, 4)]
        for process in children:
            process.start()
        for process in children:
            process.join()
        record_accepted(1, batch=False)  # the scraping process counts too
        sys.stdout.write(render().decode())
    """
)


def test_in_multiprocess_mode_a_scrape_sums_what_every_process_recorded(tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    stale = directory / "counter_999999.db"  # a dead run's file: never summed into this one
    stale.write_bytes(b"")
    script = tmp_path / "run.py"
    script.write_text(MULTIPROCESS_RUN)
    environment = {key: val for key, val in os.environ.items() if key != ENV}

    result = subprocess.run(
        [sys.executable, str(script), str(directory)],
        env=environment,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert value("dedup_events_accepted_total", {"endpoint": "batch"}, text=text) == 7
    assert value("dedup_events_accepted_total", {"endpoint": "single"}, text=text) == 1
    assert value("dedup_retries_total", text=text) == 2
    assert not stale.exists()


def test_an_operator_set_metrics_directory_is_used_as_it_is(tmp_path, monkeypatch):
    given = tmp_path / "given"
    monkeypatch.setenv(ENV, str(given))
    kept = tmp_path / "given" / "counter_1.db"
    given.mkdir()
    kept.write_bytes(b"")

    assert prepare_metrics_dir(tmp_path / "default") == given
    assert kept.exists()
    assert not (tmp_path / "default").exists()
