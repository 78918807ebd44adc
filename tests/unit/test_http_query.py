"""POST /admin/query: the answer as JSON, each refusal as a 4xx from the one error table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from dedup.application.accept_events import AcceptEvents
from dedup.application.run_query import RunQuery
from dedup.domain.query import Refusal, ResultColumn
from dedup.infrastructure.app import create_app
from dedup.infrastructure.ids import new_event_id
from litestar.testing import TestClient

from tests.fakes import FakeQueue, FakeStoreQuery

PATH = "/admin/query"
ADMIN = {"X-Admin-Key": "admin-s3cret"}
EVENTS = "SELECT event_id, n FROM events"
COLUMNS = (ResultColumn("event_id", "UUID"), ResultColumn("n", "UInt64"))


@pytest.fixture
def store() -> FakeStoreQuery:
    rows = [(f"00000000-0000-0000-0000-00000000000{n}", n) for n in range(5)]
    return FakeStoreQuery(answers={EVENTS: (COLUMNS, rows)})


@pytest.fixture
def client(store: FakeStoreQuery) -> Iterator[TestClient]:
    accept = AcceptEvents(queue=FakeQueue(), clock=lambda: datetime.now(UTC), new_id=new_event_id)
    app = create_app(
        accept_events=accept,
        probes={},
        api_keys={"web": "web-write-key"},
        run_query=RunQuery(store=store, default_rows=3, max_rows=10),
        admin_key=ADMIN["X-Admin-Key"],
    )
    with TestClient(app) as client:
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
