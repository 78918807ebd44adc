"""The Tracking API (/v1/*) through the real app: answers, write keys, identity, limits, outages."""

from __future__ import annotations

import gzip
import json
from base64 import b64encode
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from dedup.application.accept_events import AcceptEvents
from dedup.domain.fingerprint import EventFingerprint
from dedup.infrastructure.app import create_app
from dedup.infrastructure.ids import new_event_id
from litestar.testing import TestClient

from tests.fakes import FakeQueue
from tests.scrape import value

KEYS = {"web": "web-write-key", "ios": "ios-write-key"}
SHORT = {"t": "track", "i": "identify", "p": "page", "s": "screen", "g": "group", "a": "alias"}
FULL = {kind: {"userId": "u1", "event": "Signed Up", "groupId": "g1", "previousId": "old"}
        for kind in SHORT.values()}  # fmt: skip


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + b64encode(f"{key}:".encode()).decode()}


WEB = basic(KEYS["web"])


def client_for(queue: FakeQueue, **app_options: object) -> TestClient:
    accept_events = AcceptEvents(
        queue=queue,
        clock=lambda: datetime.now(UTC),
        new_id=new_event_id,
        ignore_fields=frozenset({"debug"}),
    )
    return TestClient(create_app(accept_events=accept_events, probes={}, **app_options))


@pytest.fixture
def client(queue: FakeQueue) -> Iterator[TestClient]:
    with client_for(queue, api_keys=KEYS) as client:
        yield client


def stored(queue: FakeQueue) -> list[dict[str, object]]:
    return [json.loads(event.payload) for event in queue.queued]


@pytest.mark.parametrize("kind", sorted(FULL))
def test_each_type_path_and_its_short_form_queue_one_message_of_that_type(client, queue, kind):
    for path in (f"/v1/{kind}", f"/v1/{kind[0]}"):
        response = client.post(path, json=FULL[kind], headers=WEB)

        assert response.status_code == 200, response.text
        assert response.json() == {"success": True}
    assert [payload["type"] for payload in stored(queue)] == [kind, kind]
    assert {event.source for event in queue.queued} == {"web"}


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/import", "/v1/b"])
def test_a_batch_queues_every_message_whole_with_its_top_level_fields(client, queue, path):
    items = [
        {"type": kind, **body, "timestamp": "2026-01-02T03:04:05Z"} for kind, body in FULL.items()
    ]
    response = client.post(path, json={"batch": items}, headers=WEB)

    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}
    assert stored(queue) == items


def test_the_write_key_may_come_in_the_body_and_is_not_stored(client, queue):
    body = {"userId": "u", "event": "e", "writeKey": KEYS["ios"]}
    assert client.post("/v1/track", json=body).status_code == 200
    batch = {
        "batch": [{"type": "identify", "userId": "u", "writeKey": "x"}],
        "writeKey": KEYS["web"],
    }
    assert client.post("/v1/batch", json=batch).status_code == 200

    assert [event.source for event in queue.queued] == ["ios", "web"]
    assert all("writeKey" not in payload for payload in stored(queue))


@pytest.mark.parametrize(
    "headers, body",
    [
        pytest.param({}, {}, id="no-key"),
        pytest.param(basic("wrong"), {}, id="wrong-basic"),
        pytest.param({}, {"writeKey": "wrong"}, id="wrong-body-key"),
        pytest.param({"Authorization": "Basic !!!"}, {}, id="not-base64"),
        pytest.param(basic(""), {}, id="empty-basic"),
    ],
)
def test_a_missing_or_unknown_write_key_is_401_with_code_and_message(client, queue, headers, body):
    response = client.post("/v1/track", json={"userId": "u", "event": "e", **body}, headers=headers)

    assert response.status_code == 401
    error = response.json()
    assert error["code"] == error["error"] == "unauthorized"
    assert error["message"]
    assert queue.queued == []


def test_a_wrong_key_is_401_even_when_the_body_is_also_invalid(client, queue):
    response = client.post("/v1/batch", json={"batch": [{"type": "nope"}]}, headers=basic("x"))
    assert response.status_code == 401


def test_without_keys_configured_every_message_comes_from_default(queue):
    with client_for(queue) as client:
        assert client.post("/v1/t", json={"userId": "u", "event": "e"}).status_code == 200
        assert (
            client.post("/v1/t", json={"userId": "u", "event": "e"}, headers=WEB).status_code == 200
        )
    assert {event.source for event in queue.queued} == {"default"}


def test_a_resent_message_id_is_one_identity_whatever_its_sent_at(client, queue):
    message = {"userId": "u", "event": "e", "messageId": "ajs-next-1"}
    client.post("/v1/track", json={**message, "sentAt": "2026-01-01T00:00:00Z"}, headers=WEB)
    client.post("/v1/t", json={**message, "sentAt": "2026-01-01T00:00:09Z"}, headers=WEB)

    first, retry = queue.queued
    assert first.fingerprint == retry.fingerprint
    assert first.fingerprint == EventFingerprint.of_key(source="web", key="ajs-next-1")
    assert first.content == retry.content  # a retry, not a different message under one id


def test_an_analytics_js_retry_is_the_same_content_whatever_its_metadata_says(client, queue):
    # analytics.js (normalize.ts) restamps `_metadata.retryCount` on a retry: not the event.
    message = {"userId": "u", "event": "e", "messageId": "ajs-next-2"}
    client.post("/v1/t", json={**message, "_metadata": {"bundled": ["Segment.io"]}}, headers=WEB)
    resent = {**message, "_metadata": {"retryCount": 2, "bundled": ["Segment.io"]}}
    client.post("/v1/t", json=resent, headers=WEB)

    first, retry = queue.queued
    assert first.fingerprint == retry.fingerprint
    assert first.content == retry.content


def test_a_message_id_is_scoped_by_its_source(client, queue):
    message = {"userId": "u", "event": "e", "messageId": "m-1"}
    client.post("/v1/track", json=message, headers=WEB)
    client.post("/v1/track", json=message, headers=basic(KEYS["ios"]))

    web, ios = queue.queued
    assert web.fingerprint != ios.fingerprint


def test_a_batch_items_message_id_is_its_own_key_not_the_requests(client, queue):
    items = [{"type": "identify", "userId": "u", "messageId": f"m-{n}"} for n in range(2)]
    client.post("/v1/batch", json={"batch": items}, headers=WEB)
    client.post("/v1/identify", json=items[1], headers=WEB)

    m0, m1, alone = queue.queued
    assert m0.fingerprint == EventFingerprint.of_key(source="web", key="m-0")
    assert m1.fingerprint == alone.fingerprint


def test_without_message_id_the_content_less_sent_at_and_ignored_fields_is_the_identity(
    client, queue
):
    message = {"userId": "u", "event": "e"}
    client.post("/v1/track", json={**message, "sentAt": "1", "debug": 1}, headers=WEB)
    client.post("/v1/track", json={**message, "sentAt": "2", "debug": 2}, headers=WEB)
    client.post("/v1/track", json={**message, "event": "other"}, headers=WEB)

    first, resent, other = queue.queued
    assert first.fingerprint == resent.fingerprint
    assert other.fingerprint != first.fingerprint
    assert '"sentAt":"1"' in first.payload  # left out of the identity, still stored


@pytest.mark.parametrize(
    "path, body, expected",
    [
        ("/v1/batch", {"batch": [{"type": "identify", "userId": "u"}, {"userId": "u"}]},
         ("invalid_type", 1)),
        ("/v1/batch", {"batch": [{"type": "track", "anonymousId": "a"}]}, ("missing_field", 0)),
        ("/v1/batch", {"batch": [{"type": "page"}]}, ("missing_user", 0)),
        ("/v1/batch", {"batch": []}, ("invalid_batch", None)),
        ("/v1/identify", {"anonymousId": "a", "traits": [1]}, ("invalid_field", None)),
        ("/v1/track", {"userId": "u", "event": "e", "properties": "x"}, ("invalid_field", None)),
        ("/v1/page", {"type": "track", "userId": "u"}, ("type_mismatch", None)),
        ("/v1/alias", {"userId": "u"}, ("missing_field", None)),
        ("/v1/track", [{"userId": "u"}], ("not_an_object", None)),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_with_code_message_and_index_and_nothing_is_queued(
    client, queue, path, body, expected
):
    response = client.post(path, json=body, headers=WEB)

    assert response.status_code == 400, response.text
    error = response.json()
    assert (error["code"], error.get("index")) == expected
    assert error["message"] == error["detail"]
    assert queue.queued == []


def test_a_message_over_32_kb_is_a_400(client, queue):
    body = {"userId": "u", "event": "e", "properties": {"x": "y" * 32 * 1024}}
    response = client.post("/v1/track", json=body, headers=WEB)

    assert response.status_code == 400
    assert response.json()["code"] == "message_too_large"
    assert queue.queued == []


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
def test_a_batch_request_over_500_kb_is_a_400(client, queue, packed):
    item = {"type": "track", "userId": "u", "event": "e", "properties": {"x": "y" * 30_000}}
    raw = json.dumps({"batch": [item] * 18}).encode()  # each item under 32 KB, the whole over
    headers = {**WEB, "Content-Encoding": "gzip"} if packed else WEB
    response = client.post(
        "/v1/batch", content=gzip.compress(raw) if packed else raw, headers=headers
    )

    assert response.status_code == 400
    assert response.json()["code"] == "batch_too_large"
    assert queue.queued == []


def test_a_batch_just_under_500_kb_is_accepted(client, queue):
    item = {"type": "track", "userId": "u", "event": "e", "properties": {"x": "y" * 30_000}}
    response = client.post("/v1/batch", json={"batch": [item] * 16}, headers=WEB)

    assert response.status_code == 200, response.text
    assert len(queue.queued) == 16


def test_a_gzip_batch_is_read_as_rudderstack_sends_it(client, queue):
    body = {"batch": [{"type": "identify", "userId": "u", "messageId": "r-1"}], "sentAt": "now"}
    packed = gzip.compress(json.dumps(body).encode())
    headers = {**WEB, "Content-Encoding": "gzip", "Content-Type": "application/json"}
    response = client.post("/v1/batch", content=packed, headers=headers)

    assert response.status_code == 200, response.text
    assert stored(queue) == [{"type": "identify", "userId": "u", "messageId": "r-1"}]


def test_a_text_plain_body_is_read_as_json_as_analytics_js_sends_it(client, queue):
    body = json.dumps({"userId": "u", "event": "e", "writeKey": KEYS["web"]}).encode()
    response = client.post("/v1/t", content=body, headers={"Content-Type": "text/plain"})

    assert response.status_code == 200, response.text
    assert len(queue.queued) == 1


def test_a_broker_outage_is_503_with_retry_after_and_the_sdk_fields(client, queue):
    queue.down = True
    response = client.post(
        "/v1/batch", json={"batch": [{"type": "identify", "userId": "u"}]}, headers=WEB
    )

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == "service_unavailable"
    assert queue.queued == []


def test_errors_outside_v1_keep_their_two_fields(client):
    response = client.post("/service-event/", json={"a": 1})
    assert set(response.json()) == {"error", "detail"}


def test_accepted_messages_are_counted_by_source_and_type(client):
    labels = {"source": "web", "type": "page"}
    before = value("dedup_tracking_messages_accepted_total", labels)
    accepted = value("dedup_events_accepted_total", {"endpoint": "tracking"})

    client.post("/v1/p", json={"userId": "u"}, headers=WEB)
    client.post("/v1/batch", json={"batch": [{"type": "page", "userId": "u"}] * 2}, headers=WEB)

    assert value("dedup_tracking_messages_accepted_total", labels) == before + 3
    assert value("dedup_events_accepted_total", {"endpoint": "tracking"}) == accepted + 3


def test_the_tracking_paths_are_in_the_openapi_schema(client):
    paths = client.get("/schema/openapi.json").json()["paths"]

    for path in ("/v1/track", "/v1/t", "/v1/batch", "/v1/import", "/v1/alias"):
        operation = paths[path]["post"]
        assert "requestBody" in operation
        assert {"200", "400", "401", "503"} <= set(operation["responses"])
    assert "get" in paths["/v1/projects/{write_key}/settings"]


def test_a_message_is_measured_as_its_json_not_as_its_request_was_written(client, queue):
    # Under 32 KB as JSON, over it as sent (indented): taken alone as in a batch.
    message = {"userId": "u", "event": "e", "properties": {f"k{n}": n for n in range(1500)}}
    alone = json.dumps(message, indent=8).encode()
    in_batch = json.dumps({"batch": [{"type": "track", **message}]}, indent=8).encode()
    assert len(alone) > 32 * 1024 > len(json.dumps(message, separators=(",", ":")))
    headers = {**WEB, "Content-Type": "application/json"}

    assert client.post("/v1/track", content=alone, headers=headers).status_code == 200
    assert client.post("/v1/batch", content=in_batch, headers=headers).status_code == 200
    assert len(queue.queued) == 2


def test_a_request_past_the_batch_limit_on_a_one_message_path_is_a_400(client, queue):
    body = {"userId": "u", "event": "e", "properties": {"x": "y" * 600_000}}
    response = client.post("/v1/track", json=body, headers=WEB)

    assert response.status_code == 400
    assert response.json()["code"] == "message_too_large"
    assert queue.queued == []


def test_an_analytics_js_retry_restamps_metadata_and_is_the_same_content(client, queue):
    # analytics.js sets `_metadata.retryCount` on each new attempt of one messageId.
    message = {"userId": "u", "event": "e", "messageId": "ajs-next-2", "_metadata": {}}
    client.post("/v1/t", json=message, headers=WEB)
    client.post("/v1/t", json={**message, "_metadata": {"retryCount": 2}}, headers=WEB)

    first, retry = queue.queued
    assert first.fingerprint == retry.fingerprint
    assert first.content == retry.content  # a retry, not a key conflict


def test_a_tracked_message_is_queued_with_its_standard_fields_the_path_naming_its_type(
    client, queue
):
    track = {"event": "Signed Up", "userId": 7, "timestamp": "2026-01-02T04:04:05+01:00"}
    page = {"name": "Pricing", "anonymousId": "a-1"}
    for path, body in (("/v1/t", track), ("/v1/page", page)):
        assert client.post(path, json=body, headers=WEB).status_code == 200

    signed_up, pricing = (event.standard for event in queue.queued)
    assert (signed_up.type, signed_up.event, signed_up.user_id) == ("track", "Signed Up", "7")
    assert signed_up.timestamp == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (pricing.type, pricing.event, pricing.anonymous_id) == ("page", "Pricing", "a-1")
