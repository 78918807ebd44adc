"""The Tracking API end to end: `dedup serve` + `dedup worker`, spoken to as Segment's SDKs do."""

from __future__ import annotations

import gzip
import json
import uuid
from base64 import b64encode
from pathlib import Path

import httpx
import pytest
from dedup.adapters.outbound.clickhouse.miniorm import ident

from tests.e2e.conftest import Stack, StackFactory
from tests.e2e.test_embedded import EmbeddedServer

pytestmark = pytest.mark.e2e

KEYS = "web=web-write-key,ios=ios-write-key"
PAGE = "http://shop.example:8080"


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + b64encode(f"{key}:".encode()).decode()}


@pytest.fixture
def tracking(make_stack: StackFactory) -> Stack:
    return make_stack(api_keys=KEYS, cors_origins=PAGE)


def messages(run: str) -> list[dict[str, object]]:
    """One message of each type, each with the messageId an SDK gives it."""
    user = {"userId": f"user-{run}", "context": {"library": {"name": "e2e"}}}
    return [
        {"type": "identify", **user, "traits": {"plan": "pro"}},
        {"type": "track", **user, "event": "Signed Up", "properties": {"run": run}},
        {"type": "page", **user, "name": "Home"},
        {"type": "screen", **user, "name": "Settings"},
        {"type": "group", **user, "groupId": "acme"},
        {"type": "alias", "userId": f"user-{run}", "previousId": f"anon-{run}"},
    ]


def test_sdk_retries_of_each_message_are_stored_once_and_recorded_as_duplicates(
    tracking: Stack,
) -> None:
    run = uuid.uuid4().hex
    batch = [{**m, "messageId": f"{run}-{n}"} for n, m in enumerate(messages(run))]
    client = httpx.Client(base_url=tracking.base_url, timeout=30)
    web = basic("web-write-key")

    first = client.post(
        "/v1/batch", json={"batch": batch, "sentAt": "2026-01-01T00:00:00Z"}, headers=web
    )
    # The SDK's retry: the same messages, restamped, this time gzipped as RudderStack sends them.
    retry = {"batch": [{**m, "sentAt": "2026-01-01T00:00:07Z"} for m in batch]}
    resent = client.post(
        "/v1/import",
        content=gzip.compress(json.dumps(retry).encode()),
        headers={**web, "Content-Encoding": "gzip"},
    )
    # analytics.js sends one message per short path, the key in its text/plain body.
    single = client.post(
        "/v1/t",
        content=json.dumps({**batch[1], "writeKey": "web-write-key"}).encode(),
        headers={"Content-Type": "text/plain", "Origin": PAGE},
    )
    refused = client.post("/v1/batch", json={"batch": [*batch, {"userId": "u"}]}, headers=web)
    stranger = client.post("/v1/batch", json={"batch": batch}, headers=basic("nope"))

    assert [first.status_code, resent.status_code, single.status_code] == [200] * 3, tracking.logs()
    assert first.json() == {"success": True}
    assert single.headers["access-control-allow-origin"] == PAGE
    assert (refused.status_code, refused.json()["index"]) == (400, len(batch))
    assert refused.json()["code"] == "invalid_type"
    assert (stranger.status_code, stranger.json()["code"]) == (401, "unauthorized")

    tracking.wait_drained(timeout=60)
    db = ident(tracking.database)
    rows = tracking.query(
        f"SELECT payload, source FROM {db}.events FINAL WHERE position(payload, '{run}') > 0"
    )
    stored = sorted((json.loads(payload)["messageId"], source) for payload, source in rows)
    assert stored == sorted((m["messageId"], "web") for m in batch)
    payloads = {json.loads(payload)["messageId"]: json.loads(payload) for payload, _ in rows}
    assert payloads[f"{run}-1"]["event"] == "Signed Up"
    assert all("writeKey" not in payload for payload in payloads.values())
    duplicates = tracking.query(
        f"SELECT kind, count() FROM {db}.event_duplicates FINAL GROUP BY kind"
    )
    # Every retry is a duplicate of its message: the same content less sentAt, no conflict.
    assert dict(duplicates) == {"content": len(batch) + 1}


def test_a_browser_page_finds_the_api_host_and_its_preflights_answered(tracking: Stack) -> None:
    client = httpx.Client(base_url=tracking.base_url, timeout=30)
    host = tracking.base_url.removeprefix("http://")

    settings = client.get("/v1/projects/web-write-key/settings", headers={"Origin": PAGE})
    unknown = client.get("/v1/projects/nope/settings")
    preflight = client.options(
        "/v1/t",
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-retry-count",
        },
    )

    assert settings.status_code == 200
    segment = settings.json()["integrations"]["Segment.io"]
    assert (segment["apiHost"], segment["protocol"]) == (f"{host}/v1", "http")
    assert settings.headers["access-control-allow-origin"] == PAGE
    assert unknown.status_code == 404
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == PAGE


def test_the_embedded_service_takes_the_tracking_api_as_make_run_serves_it(
    tmp_path: Path,
) -> None:
    server = EmbeddedServer(tmp_path)
    run = uuid.uuid4().hex
    batch = [{**m, "messageId": f"{run}-{n}"} for n, m in enumerate(messages(run))]
    server.start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            answers = [
                client.post("/v1/batch", json={"batch": batch, "writeKey": "any"}),
                client.post("/v1/b", json={"batch": batch, "sentAt": "later"}),
                client.post("/v1/a", json=batch[-1]),
            ]
    finally:
        server.stop()  # a clean stop drains the in-process queue

    assert [answer.status_code for answer in answers] == [200] * 3, [a.text for a in answers]
    stored, duplicates = server.inspect()
    assert sorted(json.loads(payload)["messageId"] for payload in stored) == sorted(
        m["messageId"] for m in batch
    )
    assert len(duplicates) == len(batch) + 1
