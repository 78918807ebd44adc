"""Write keys: with keys configured, only a request carrying one is queued, under its name."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from dedup.application.accept_events import AcceptEvents
from dedup.infrastructure.app import create_app
from dedup.infrastructure.ids import new_event_id
from litestar.testing import TestClient

from tests.fakes import FakeQueue

ONE = "/service-event/"
BATCH = "/service-event/batch"
KEYS = {"web": "s3cret-web-key", "ios": "s3cret-ios-key"}


def client_for(queue: FakeQueue, api_keys: dict[str, str]) -> TestClient:
    accept_events = AcceptEvents(queue=queue, clock=lambda: datetime.now(UTC), new_id=new_event_id)
    return TestClient(create_app(accept_events=accept_events, probes={}, api_keys=api_keys))


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()


@pytest.fixture
def client(queue: FakeQueue) -> Iterator[TestClient]:
    with client_for(queue, KEYS) as client:
        yield client


@pytest.mark.parametrize("path, body", [(ONE, {"a": 1}), (BATCH, [{"a": 1}])])
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-key"),
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong-bearer"),
        pytest.param({"X-API-Key": "wrong"}, id="wrong-x-api-key"),
        pytest.param({"X-API-Key": "s3cret-web-ke"}, id="prefix-of-a-key"),
        pytest.param({"Authorization": "Basic czNjcmV0LXdlYi1rZXk="}, id="basic-scheme"),
        pytest.param({"Authorization": "Bearer "}, id="empty-bearer"),
    ],
)
def test_a_request_without_a_valid_key_gets_401_and_nothing_is_queued(
    client, queue, path, body, headers
):
    response = client.post(path, json=body, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert queue.queued == []


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Authorization": "Bearer s3cret-ios-key"}, id="bearer"),
        pytest.param({"Authorization": "bearer s3cret-ios-key"}, id="lowercase-scheme"),
        pytest.param({"X-API-Key": "s3cret-ios-key"}, id="x-api-key"),
    ],
)
def test_a_valid_key_is_accepted_and_its_name_becomes_the_source(client, queue, headers):
    response = client.post(ONE, json={"a": 1}, headers=headers)

    assert response.status_code == 200
    assert [event.source for event in queue.queued] == ["ios"]


def test_each_key_name_marks_its_own_events_in_a_batch(client, queue):
    client.post(BATCH, json=[{"a": 1}, {"a": 2}], headers={"X-API-Key": KEYS["web"]})
    client.post(BATCH, json=[{"a": 1}], headers={"X-API-Key": KEYS["ios"]})

    assert [event.source for event in queue.queued] == ["web", "web", "ios"]


def test_the_same_idempotency_key_from_two_sources_names_two_events(client, queue):
    for name in ("web", "ios"):
        headers = {"X-API-Key": KEYS[name], "Idempotency-Key": "k-1"}
        client.post(ONE, json={"a": 1}, headers=headers)

    web, ios = queue.queued
    assert web.fingerprint != ios.fingerprint


def test_without_keys_configured_every_request_comes_from_default(queue):
    with client_for(queue, {}) as client:
        response = client.post(ONE, json={"a": 1}, headers={"X-API-Key": "anything"})

    assert response.status_code == 200
    assert queue.queued[0].source == "default"


def test_a_secret_never_appears_in_answers_or_logs(client, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = client.post(ONE, json={"a": 1}, headers={"X-API-Key": "s3cret-web-kez"})
    right = client.post(ONE, json={"a": 1}, headers={"X-API-Key": KEYS["web"]})

    assert (wrong.status_code, right.status_code) == (401, 200)
    for text in (wrong.text, right.text, caplog.text):
        assert "s3cret" not in text


@pytest.mark.parametrize(
    "api_keys",
    [
        pytest.param({"web": ""}, id="empty-secret"),
        pytest.param({"": "s3cret"}, id="empty-name"),
        pytest.param({"web": "same", "ios": "same"}, id="shared-secret"),
    ],
)
def test_unusable_key_settings_are_refused_at_startup(queue, api_keys):
    with pytest.raises(ValueError) as refused:
        client_for(queue, api_keys)

    assert "same" not in str(refused.value)
