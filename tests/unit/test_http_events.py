"""POST /service-event/ and /batch through the real app: answers, queued events, outages."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from uuid import UUID

import pytest
from dedup.application.accept_events import AcceptEvents
from dedup.application.ports import Queue
from dedup.domain.event import Event
from dedup.domain.fingerprint import canonical_json
from dedup.infrastructure.app import create_app
from dedup.infrastructure.ids import new_event_id
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from tests.fakes import FakeQueue

ONE = "/service-event/"
BATCH = "/service-event/batch"


def client_for(queue: Queue, **app_options: object) -> TestClient:
    accept_events = AcceptEvents(
        queue=queue, clock=lambda: datetime.now(UTC), new_id=new_event_id, id_field="message_id"
    )
    return TestClient(create_app(accept_events=accept_events, probes={}, **app_options))


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()


@pytest.fixture
def client(queue: FakeQueue) -> Iterator[TestClient]:
    with client_for(queue) as client:
        yield client


def test_an_accepted_event_answers_ok_with_its_uuid_and_is_queued_canonically(client, queue):
    response = client.post(ONE, content=b'{ "b": [1, {"z": 0, "a": null}], "a": "\xc3\xa9" }')

    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "ok"
    assert UUID(body["event_id"]).version == 7
    [event] = queue.queued
    assert str(event.event_id) == body["event_id"]
    assert event.payload == '{"a":"é","b":[1,{"a":null,"z":0}]}'
    assert event.source == "default"


def test_a_batch_is_queued_whole_and_answers_its_ids_in_item_order(client, queue):
    response = client.post(BATCH, json=[{"n": 1}, {"n": 2}, {"n": 3}])

    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "ok"
    assert body["event_ids"] == [str(event.event_id) for event in queue.queued]
    assert [event.payload for event in queue.queued] == ['{"n":1}', '{"n":2}', '{"n":3}']
    assert all(UUID(event_id) for event_id in body["event_ids"])


def test_a_repeated_event_is_still_answered_ok_and_queued_for_dedup(client, queue):
    first = client.post(ONE, json={"click": 1})
    second = client.post(ONE, json={"click": 1})

    assert first.status_code == second.status_code == 200
    assert first.json()["event_id"] != second.json()["event_id"]
    assert queue.queued[0].fingerprint == queue.queued[1].fingerprint


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "application/json; charset=utf-8", "application/event+json"],
)
def test_json_content_types_and_a_missing_one_are_accepted(client, queue, content_type):
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.post(ONE, content=b'{"a":1}', headers=headers)

    assert response.status_code == 200, response.text
    assert len(queue.queued) == 1


def test_the_same_idempotency_key_gives_the_same_identity_whatever_the_content(client, queue):
    client.post(ONE, json={"v": 1}, headers={"Idempotency-Key": "order-17"})
    client.post(ONE, json={"v": 1}, headers={"Idempotency-Key": "order-17"})
    client.post(ONE, json={"v": 2}, headers={"Idempotency-Key": "order-17"})

    first, again, changed = queue.queued
    assert first.fingerprint == again.fingerprint == changed.fingerprint
    assert first.content == again.content
    assert changed.content != first.content


def test_a_batch_idempotency_key_names_each_item_by_its_index(client, queue):
    client.post(BATCH, json=[{"v": 1}, {"v": 1}], headers={"Idempotency-Key": "b-1"})
    client.post(BATCH, json=[{"v": 1}, {"v": 1}], headers={"Idempotency-Key": "b-1"})

    a0, a1, b0, b1 = queue.queued
    assert a0.fingerprint == b0.fingerprint
    assert a1.fingerprint == b1.fingerprint
    assert a0.fingerprint != a1.fingerprint


def test_an_id_field_in_the_body_names_the_event(client, queue):
    client.post(ONE, json={"message_id": "m-1", "v": 1})
    client.post(ONE, json={"message_id": "m-1", "v": 2})

    first, second = queue.queued
    assert first.fingerprint == second.fingerprint
    assert first.content != second.content


@pytest.mark.parametrize("path, body", [(ONE, {"a": 1}), (BATCH, [{"a": 1}, {"b": 2}])])
def test_a_gzip_body_is_decompressed_and_accepted(client, queue, path, body):
    packed = gzip.compress(json.dumps(body).encode())
    response = client.post(path, content=packed, headers={"Content-Encoding": "gzip"})

    assert response.status_code == 200, response.text
    assert [json.loads(event.payload) for event in queue.queued] == (
        body if isinstance(body, list) else [body]
    )


def test_a_body_of_several_gzip_members_is_read_whole(client, queue):
    packed = gzip.compress(b'{"a": ') + gzip.compress(b'"joined"}')
    response = client.post(ONE, content=packed, headers={"Content-Encoding": "gzip"})

    assert response.status_code == 200, response.text
    assert queue.queued[0].payload == '{"a":"joined"}'


def test_a_broker_outage_answers_503_with_retry_after_and_queues_nothing(client, queue):
    queue.down = True
    response = client.post(ONE, json={"a": 1})

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "service_unavailable"
    assert queue.queued == []

    queue.down = False
    assert client.post(ONE, json={"a": 1}).status_code == 200


class ExplodingQueue(Queue):
    async def put(self, events: Sequence[Event]) -> None:
        raise RuntimeError("secret internals /etc/passwd")


def test_an_unexpected_error_answers_500_json_without_a_traceback():
    with client_for(ExplodingQueue()) as client:
        response = client.post(ONE, json={"a": 1})

    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "detail": "the server failed; the error was logged",
    }
    assert "Traceback" not in response.text
    assert "passwd" not in response.text


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[TestClient, FakeQueue]]:
    queue = FakeQueue()
    with client_for(queue) as client:
        yield client, queue


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_any_json_object_is_accepted_and_queued_as_its_canonical_form(shared, payload):
    client, queue = shared
    queue.queued.clear()
    payload.pop("message_id", None)  # the id field has rules of its own

    response = client.post(ONE, content=json.dumps(payload).encode())

    assert response.status_code == 200, response.text
    [event] = queue.queued
    assert event.payload == canonical_json(payload).decode()
    assert json.loads(event.payload) == payload


@pytest.mark.parametrize(
    "content_type",
    ["text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "application/vnd.api+json"],
)
def test_json_sent_as_a_beacon_or_by_curl_is_accepted(content_type: str, queue: FakeQueue) -> None:
    with client_for(queue) as client:
        response = client.post(
            ONE, content=b'{"page": "/home"}', headers={"Content-Type": content_type}
        )
    assert response.status_code == 200
    assert [e.payload for e in queue.queued] == ['{"page":"/home"}']
