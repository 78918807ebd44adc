"""The admin paths (GET /, /admin/overview): loopback, or the admin key; never a write key."""

from __future__ import annotations

import pytest
from dedup.adapters.inbound.http.interim_admin_guard import is_loopback_peer

from tests.unit.test_live_page import page_client

PATHS = ["/", "/admin/overview"]
ADMIN_KEY = "s3cret-admin-key"
WRITE_KEYS = {"web": "s3cret-web-key"}
REMOTE = "203.0.113.7"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "::ffff:127.0.0.1"])
def test_a_loopback_client_is_let_in_without_a_key(path: str, host: str) -> None:
    with page_client(host=host, admin_key=ADMIN_KEY) as client:
        assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", PATHS)
def test_another_host_is_refused_when_no_admin_key_is_set(path: str) -> None:
    with page_client(host=REMOTE) as client:
        response = client.get(path, headers={"X-Admin-Key": "anything"})

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert "DEDUP_ADMIN_KEY" in response.json()["detail"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-key"),
        pytest.param({"X-Admin-Key": "wrong"}, id="wrong-key"),
        pytest.param({"X-Admin-Key": ADMIN_KEY[:-1]}, id="prefix-of-the-key"),
        pytest.param({"Authorization": f"Basic {ADMIN_KEY}"}, id="basic-scheme"),
        pytest.param({"X-API-Key": ADMIN_KEY}, id="as-a-write-key-header"),
    ],
)
def test_another_host_without_the_admin_key_gets_401(path: str, headers: dict[str, str]) -> None:
    with page_client(host=REMOTE, admin_key=ADMIN_KEY) as client:
        response = client.get(path, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Admin-Key": ADMIN_KEY}, id="x-admin-key"),
        pytest.param({"Authorization": f"Bearer {ADMIN_KEY}"}, id="bearer"),
    ],
)
def test_another_host_with_the_admin_key_is_let_in(path: str, headers: dict[str, str]) -> None:
    with page_client(host=REMOTE, admin_key=ADMIN_KEY) as client:
        assert client.get(path, headers=headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Authorization": f"Bearer {WRITE_KEYS['web']}"}, id="bearer"),
        pytest.param({"X-API-Key": WRITE_KEYS["web"]}, id="x-api-key"),
    ],
)
def test_a_write_key_does_not_open_the_admin_paths(headers: dict[str, str]) -> None:
    with page_client(host=REMOTE, admin_key=ADMIN_KEY, api_keys=WRITE_KEYS) as client:
        written = client.post("/service-event/", json={"a": 1}, headers=headers)
        as_admin_key = client.get("/admin/overview", headers={"X-Admin-Key": WRITE_KEYS["web"]})
        response = client.get("/admin/overview", headers=headers)

    assert written.status_code == 200  # the key is good for what it is for
    assert response.status_code == 401
    assert as_admin_key.status_code == 401


@pytest.mark.parametrize(
    "host", [None, "", "testclient", "localhost", "10.0.0.1", "::ffff:10.0.0.1", "0.0.0.0"]
)
def test_only_a_loopback_address_counts_as_this_machine(host: str | None) -> None:
    # A name is never trusted: the peer is an address, and a name could be anything.
    assert not is_loopback_peer(host)
