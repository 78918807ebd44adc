"""CORS on the ingest paths: preflights answered for allowed origins, nowhere else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from dedup.application.accept_events import AcceptEvents
from dedup.application.run_query import RunQuery
from dedup.infrastructure.app import create_app
from dedup.infrastructure.ids import new_event_id
from litestar.testing import TestClient

from tests.fakes import FakeQueue, FakeStoreQuery

PAGE = "http://shop.example:8080"
INGEST = ["/service-event/", "/service-event/batch", "/v1/t", "/v1/track", "/v1/batch", "/v1/b"]
SDK_HEADERS = "authorization,content-type,x-retry-count,idempotency-key,x-api-key,anonymousid"


def preflight(origin: str, headers: str = SDK_HEADERS) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": headers,
    }


def client_for(queue: FakeQueue, origins: list[str]) -> TestClient:
    accept_events = AcceptEvents(queue=queue, clock=lambda: datetime.now(UTC), new_id=new_event_id)
    app = create_app(
        accept_events=accept_events,
        probes={},
        cors_origins=origins,
        run_query=RunQuery(store=FakeStoreQuery()),
    )
    return TestClient(app)


@pytest.fixture
def client(queue: FakeQueue) -> Iterator[TestClient]:
    with client_for(queue, [PAGE]) as client:
        yield client


@pytest.mark.parametrize("path", INGEST)
def test_a_preflight_from_an_allowed_origin_allows_the_sdk_headers(client, path):
    response = client.options(path, headers=preflight(PAGE))

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == PAGE
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert set(SDK_HEADERS.split(",")) <= allowed
    assert "Origin" in response.headers["vary"]


@pytest.mark.parametrize("path", ["/v1/t", "/service-event/"])
def test_a_preflight_from_another_origin_gets_no_cors_headers(client, path):
    response = client.options(path, headers=preflight("http://evil.example"))
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("path", ["/admin/query", "/health/ready", "/metrics", "/schema"])
def test_paths_that_take_no_events_answer_no_preflight(client, path):
    response = client.options(path, headers=preflight(PAGE))
    assert "access-control-allow-origin" not in response.headers


def test_an_answer_to_an_allowed_origin_lets_its_page_read_it_errors_included(client, queue):
    accepted = client.post(
        "/v1/t",
        content=b'{"userId": "u", "event": "Clicked"}',
        headers={"Origin": PAGE, "Content-Type": "text/plain"},
    )
    refused = client.post("/service-event/", content=b"[", headers={"Origin": PAGE})
    queue.down = True
    unavailable = client.post("/service-event/", json={"a": 1}, headers={"Origin": PAGE})

    assert accepted.status_code == 200
    assert refused.status_code == 400
    assert unavailable.status_code == 503
    for response in (accepted, refused, unavailable):
        assert response.headers["access-control-allow-origin"] == PAGE
    # analytics.js waits out a 503 by its Retry-After, which a page reads only when exposed.
    assert "Retry-After" in unavailable.headers["access-control-expose-headers"]
    assert len(queue.queued) == 1


def test_any_origin_is_allowed_with_a_star(queue):
    with client_for(queue, ["*"]) as client:
        response = client.options("/v1/batch", headers=preflight("https://anywhere.example"))
        posted = client.post(
            "/v1/p", json={"anonymousId": "a"}, headers={"Origin": "https://x.example"}
        )

    assert response.headers["access-control-allow-origin"] == "*"
    assert posted.headers["access-control-allow-origin"] == "*"


def test_without_origins_configured_no_cors_header_is_sent(queue):
    with client_for(queue, []) as client:
        response = client.options("/v1/t", headers=preflight(PAGE))
        posted = client.post("/v1/t", json={"userId": "u", "event": "e"}, headers={"Origin": PAGE})

    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in posted.headers
    assert posted.status_code == 200
