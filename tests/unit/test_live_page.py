"""GET / and GET /admin/overview: the page, and the totals it samples at each refresh."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dedup.adapters.inbound.http.admin_guard import admin_only
from dedup.adapters.inbound.http.live_page_controller import LATEST, live_page_router
from dedup.application.accept_events import AcceptEvents
from dedup.application.deduplicate_event import DeduplicateEvent
from dedup.application.describe_store import DescribeStore
from dedup.domain.errors import BackendUnavailableError
from dedup.infrastructure.app import create_app
from dedup.infrastructure.ids import new_event_id
from litestar.testing import TestClient
from litestar.types import ASGIApp, Receive, Scope, Send

from tests.builders import a_copy_of, an_event
from tests.fakes import FakeEventRepository, FakeQueue

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
LOOPBACK = "127.0.0.1"


def from_host(app: ASGIApp, host: str) -> ASGIApp:
    """The app as a client at `host` reaches it (Litestar's TestClient is always "testclient")."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "client": (host, 50000)}  # type: ignore[misc]
        await app(scope, receive, send)

    return asgi


def page_client(
    *,
    repo: FakeEventRepository | None = None,
    host: str = LOOPBACK,
    admin_key: str | None = None,
    api_keys: Mapping[str, str] | None = None,
    depth: Callable[[], Mapping[str, int]] = lambda: {"events": 0},
    probes: Mapping[str, Callable[[], None]] | None = None,
) -> TestClient[Any]:
    """The API with the live page on fakes, as seen from `host`."""
    queue = FakeQueue()
    accept_events = AcceptEvents(queue=queue, clock=lambda: NOW, new_id=new_event_id)
    describe = DescribeStore(store=repo or FakeEventRepository(), clock=lambda: NOW)
    app = create_app(
        accept_events=accept_events,
        probes=probes if probes is not None else {"database": lambda: None},
        api_keys=api_keys or {},
        admin_key=admin_key,
        extra_route_handlers=[
            live_page_router(describe_store=describe, queue_depth=depth, guard=admin_only)
        ],
    )
    return TestClient(from_host(app, host), base_url="http://127.0.0.1:8000")


@pytest.fixture
def client(repo: FakeEventRepository) -> Iterator[TestClient[Any]]:
    with page_client(repo=repo) as client:
        yield client


def test_the_overview_counts_the_store_and_marks_the_latest_events_copies(
    client: TestClient[Any], deduplicate: DeduplicateEvent
) -> None:
    first = an_event(received_at=NOW - timedelta(minutes=2))
    second = an_event(received_at=NOW - timedelta(minutes=1))
    deduplicate.execute([first, second])
    deduplicate.execute([a_copy_of(first)])

    body = client.get("/admin/overview").json()

    assert body["store"]["stored"] == 2
    assert body["store"]["duplicates"] == {"content": 1, "key_conflict": 0}
    assert [(e["event_id"], e["copies"]) for e in body["store"]["latest"]] == [
        (str(second.event_id), 0),
        (str(first.event_id), 1),
    ]
    assert body["store"]["latest"][0]["preview"] == second.payload


def test_accepted_counts_the_events_the_api_answered_200_for(client: TestClient[Any]) -> None:
    before = client.get("/admin/overview").json()["accepted"]

    assert client.post("/service-event/", json={"a": 1}).status_code == 200
    assert client.post("/service-event/batch", json=[{"a": 2}, {"a": 3}]).status_code == 200

    assert client.get("/admin/overview").json()["accepted"] == before + 3


def test_the_latest_list_is_bounded(client: TestClient[Any], deduplicate: DeduplicateEvent) -> None:
    deduplicate.execute([an_event(received_at=NOW) for _ in range(LATEST + 5)])

    body = client.get("/admin/overview").json()

    assert body["store"]["stored"] == LATEST + 5
    assert len(body["store"]["latest"]) == LATEST


def test_the_queue_depth_and_the_backends_health_are_shown() -> None:
    def cache_down() -> None:
        raise BackendUnavailableError("cache", "connection refused")

    probes = {"broker": lambda: None, "cache": cache_down}
    with page_client(depth=lambda: {"events": 7, "dead_letters": 1}, probes=probes) as client:
        body = client.get("/admin/overview").json()

    assert body["queue"] == {"events": 7, "dead_letters": 1}
    assert body["health"] == {"broker": "ok", "cache": "unavailable"}


def test_a_backend_away_leaves_its_part_empty_and_the_rest_answers() -> None:
    def broker_down() -> dict[str, int]:
        raise BackendUnavailableError("broker", "connection refused")

    def database_down() -> None:
        raise BackendUnavailableError("clickhouse", "connection refused")

    repo = FakeEventRepository(down=True)
    with page_client(repo=repo, depth=broker_down, probes={"database": database_down}) as client:
        response = client.get("/admin/overview")

    assert response.status_code == 200
    body = response.json()
    assert body["store"] is None
    assert body["queue"] is None
    assert body["health"] == {"database": "unavailable", "broker": "unavailable"}
    assert isinstance(body["accepted"], int)


def test_a_refresh_asks_the_broker_once_its_depth_read_standing_for_its_probe() -> None:
    # Each CeleryQueue.ping() or depth() call opens a broker connection of its own.
    asked: list[str] = []

    def depth() -> Mapping[str, int]:
        asked.append("depth")
        return {"events": 3}

    probes = {"broker": lambda: asked.append("ping"), "database": lambda: None}
    with page_client(depth=depth, probes=probes) as client:
        body = client.get("/admin/overview").json()
        assert client.get("/health/ready").json()["checks"]["broker"] == "ok"

    assert body["queue"] == {"events": 3}
    assert body["health"] == {"broker": "ok", "database": "ok"}
    assert asked == ["depth", "ping"]  # the overview's one read, then /health/ready's own probe


def test_the_overview_is_never_cached(client: TestClient[Any]) -> None:
    assert client.get("/admin/overview").headers["cache-control"] == "no-store"


def test_the_page_is_one_html_document_that_loads_nothing_from_elsewhere(
    client: TestClient[Any],
) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in response.headers["content-security-policy"]
    page = response.text
    assert "/admin/overview" in page
    assert re.search(r"""\b(src|href)\s*=|<link|@import|url\(""", page) is None
    # The only absolute URL is the SVG namespace, a name rather than something fetched.
    assert set(re.findall(r"https?://[^\s\"'`]+", page)) == {"http://www.w3.org/2000/svg"}


@pytest.mark.parametrize("path", ["/", "/admin/overview"])
def test_the_page_and_its_json_are_guarded_like_the_query_path(path: str) -> None:
    with page_client(host="10.1.2.3", admin_key="admin-secret", api_keys={"web": "w"}) as other:
        assert other.get(path).status_code == 401  # another machine, no key
        assert other.get(path, headers={"X-API-Key": "w"}).status_code == 401  # a write key
        assert other.get(path, headers={"X-Admin-Key": "wrong"}).status_code == 403
        assert other.get(path, headers={"X-Admin-Key": "admin-secret"}).status_code == 200
    with page_client() as here:
        assert here.get(path).status_code == 200  # this machine needs no key
