"""GET /v1/projects/{writeKey}/settings: the document analytics.js loads, naming this host."""

from __future__ import annotations

from datetime import UTC, datetime

from dedup.application.accept_events import AcceptEvents
from dedup.infrastructure.app import create_app
from dedup.infrastructure.ids import new_event_id
from litestar.testing import TestClient

from tests.fakes import FakeQueue


def client_for(**app_options: object) -> TestClient:
    accept_events = AcceptEvents(
        queue=FakeQueue(), clock=lambda: datetime.now(UTC), new_id=new_event_id
    )
    return TestClient(create_app(accept_events=accept_events, probes={}, **app_options))


def test_the_settings_name_this_host_as_the_api_host_and_the_key_as_the_api_key():
    with client_for(api_keys={"web": "wk-1"}) as client:
        response = client.get("/v1/projects/wk-1/settings", headers={"Host": "events.example:8443"})

    assert response.status_code == 200
    segment = response.json()["integrations"]["Segment.io"]
    # analytics.js posts to `${protocol}://${apiHost}/t` with the apiKey as its writeKey.
    assert segment["apiHost"] == "events.example:8443/v1"
    assert segment["protocol"] == "http"
    assert segment["apiKey"] == "wk-1"
    # More integrations than Segment.io would make it load their code from a CDN.
    assert list(response.json()["integrations"]) == ["Segment.io"]
    assert response.json()["metrics"]["sampleRate"] == 0


def test_an_unknown_write_key_has_no_settings():
    with client_for(api_keys={"web": "wk-1"}) as client:
        response = client.get("/v1/projects/other/settings")

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_write_key"


def test_without_keys_configured_any_write_key_gets_settings():
    with client_for() as client:
        response = client.get("/v1/projects/anything/settings")

    assert response.status_code == 200
    assert response.json()["integrations"]["Segment.io"]["apiKey"] == "anything"
