"""POST /admin/query: the answer as JSON, each refusal as a 4xx from the one error table."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import uvicorn
from bench.processes import free_port
from dedup.adapters.outbound.http_store_query import HttpStoreQuery
from dedup.application.accept_events import AcceptEvents
from dedup.application.run_query import RunQuery
from dedup.domain.query import QueryLimits, QueryRefusedError, Refusal, ResultColumn
from dedup.infrastructure.app import create_app
from dedup.infrastructure.ids import new_event_id
from litestar import Litestar
from litestar.testing import TestClient

from tests.fakes import FakeQueue, FakeStoreQuery
from tests.waiting import wait_until

PATH = "/admin/query"
ADMIN = {"X-Admin-Key": "admin-s3cret"}
WIDE_KEY = "clé-ключ-🔑"
EVENTS = "SELECT event_id, n FROM events"
COLUMNS = (ResultColumn("event_id", "UUID"), ResultColumn("n", "UInt64"))


@pytest.fixture
def store() -> FakeStoreQuery:
    rows = [(f"00000000-0000-0000-0000-00000000000{n}", n) for n in range(5)]
    return FakeStoreQuery(answers={EVENTS: (COLUMNS, rows)})


def an_app(store: FakeStoreQuery, *, admin_key: str) -> Litestar:
    accept = AcceptEvents(queue=FakeQueue(), clock=lambda: datetime.now(UTC), new_id=new_event_id)
    return create_app(
        accept_events=accept,
        probes={},
        api_keys={"web": "web-write-key"},
        run_query=RunQuery(store=store, default_rows=3, max_rows=10),
        admin_key=admin_key,
    )


@contextmanager
def serving(app: Litestar) -> Iterator[str]:
    """The app under uvicorn on a loopback port, in a thread; its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=10, interval=0.01, what="uvicorn")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def client(store: FakeStoreQuery) -> Iterator[TestClient]:
    with TestClient(an_app(store, admin_key=ADMIN["X-Admin-Key"])) as client:
        yield client


def test_a_query_answers_column_names_types_and_rows(client):
    response = client.post(PATH, json={"sql": EVENTS, "limit": 10}, headers=ADMIN)

    assert response.status_code == 200
    assert response.json() == {
        "columns": [{"name": "event_id", "type": "UUID"}, {"name": "n", "type": "UInt64"}],
        "rows": [[f"00000000-0000-0000-0000-00000000000{n}", n] for n in range(5)],
        "truncated": False,
    }


def test_an_answer_over_the_limit_is_its_first_rows_and_says_it_was_cut(client):
    response = client.post(PATH, json={"sql": EVENTS}, headers=ADMIN)

    assert response.status_code == 200
    assert [row[1] for row in response.json()["rows"]] == [0, 1, 2]
    assert response.json()["truncated"] is True


@pytest.mark.parametrize(
    "refusal, status, code",
    [
        (Refusal.WRITES, 403, "read_only"),
        (Refusal.INVALID, 400, "invalid_query"),
        (Refusal.TIMEOUT, 422, "query_timeout"),
    ],
)
def test_a_refused_query_answers_4xx_saying_why(client, store, refusal, status, code):
    store.refusals["DROP TABLE events"] = refusal

    response = client.post(PATH, json={"sql": "DROP TABLE events"}, headers=ADMIN)

    assert response.status_code == status
    assert response.json()["error"] == code
    assert "DROP TABLE events" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [{}, {"sql": 1}, {"sql": "SELECT 1", "rows": 5}, {"sql": EVENTS, "limit": 11}, {"sql": " "}],
)
def test_a_malformed_request_is_refused_with_400(client, body):
    response = client.post(PATH, json=body, headers=ADMIN)

    assert response.status_code == 400, response.text
    assert response.json()["error"] in {"bad_request", "invalid_query"}


def test_the_store_away_answers_503(client, store):
    store.down = True

    response = client.post(PATH, json={"sql": EVENTS}, headers=ADMIN)

    assert response.status_code == 503


@pytest.mark.parametrize(
    "headers, status",
    [
        pytest.param({}, 401, id="no-key"),
        pytest.param({"X-API-Key": "web-write-key"}, 401, id="write-key"),
        pytest.param({"Authorization": "Bearer web-write-key"}, 401, id="write-key-bearer"),
        pytest.param({"X-Admin-Key": "web-write-key"}, 403, id="write-key-as-admin-key"),
    ],
)
def test_without_the_admin_key_another_machine_is_refused(client, headers, status):
    # The test client is no loopback peer: it stands for another machine.
    response = client.post(PATH, json={"sql": EVENTS}, headers=headers)

    assert response.status_code == status
    assert response.json()["error"] in {"unauthorized", "forbidden"}
    assert "rows" not in response.json()


def test_without_run_query_the_app_has_no_query_path():
    accept = AcceptEvents(queue=FakeQueue(), clock=lambda: datetime.now(UTC), new_id=new_event_id)
    with TestClient(create_app(accept_events=accept, probes={})) as client:
        assert client.post(PATH, json={"sql": EVENTS}, headers=ADMIN).status_code == 404


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param({"headers": {"X-Admin-Key": WIDE_KEY.encode()}}, id="x-admin-key"),
        pytest.param({"auth": ("admin", WIDE_KEY)}, id="basic"),
    ],
)
def test_an_admin_key_beyond_ascii_sent_in_utf8_opens_the_query_path(store, auth):
    with TestClient(an_app(store, admin_key=WIDE_KEY)) as client:
        response = client.post(PATH, json={"sql": EVENTS}, **auth)

    assert response.status_code == 200, response.text


def test_the_query_client_sends_an_admin_key_beyond_ascii_as_the_service_reads_it(store):
    # A wrong key is refused even from loopback, so a 200 here means the key was read right.
    with serving(an_app(store, admin_key=WIDE_KEY)) as base_url:
        limits = QueryLimits(rows=3, seconds=5)
        answer = HttpStoreQuery(base_url, admin_key=WIDE_KEY).run(EVENTS, limits=limits)
        with pytest.raises(QueryRefusedError):
            HttpStoreQuery(base_url, admin_key=WIDE_KEY[:-1]).run(EVENTS, limits=limits)

    assert len(answer.rows) == 3
