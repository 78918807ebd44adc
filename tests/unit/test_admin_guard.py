"""AdminGuard: this machine, or the admin key; never a write key, a proxy or a rebound name."""

from __future__ import annotations

import base64

import pytest
from dedup.adapters.inbound.http.admin_guard import AdminGuard
from dedup.adapters.inbound.http.errors import RequestRejectedError
from litestar.connection import ASGIConnection

KEY = "admin-s3cret"


def a_request(
    *, peer: str = "127.0.0.1", host: str = "127.0.0.1:8000", method: str = "GET", **headers: str
) -> ASGIConnection:  # type: ignore[type-arg]
    raw = [(b"host", host.encode())] + [
        (name.replace("_", "-").lower().encode(), value.encode()) for name, value in headers.items()
    ]
    scope = {"type": "http", "method": method, "headers": raw, "client": (peer, 50000)}
    return ASGIConnection(scope)  # type: ignore[arg-type]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def refusal(guard: AdminGuard, connection: ASGIConnection) -> int:  # type: ignore[type-arg]
    with pytest.raises(RequestRejectedError) as refused:
        guard.admit(connection)
    return refused.value.status


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.0.0.9", "::1"])
@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "localhost", "[::1]:8000"])
def test_a_request_from_this_machine_to_a_loopback_name_is_admitted_without_a_key(peer, host):
    AdminGuard.of(None).admit(a_request(peer=peer, host=host))


def test_a_request_from_another_machine_without_a_key_gets_401_asking_for_one():
    guard = AdminGuard.of(KEY)
    with pytest.raises(RequestRejectedError) as refused:
        guard.admit(a_request(peer="10.0.0.7", host="dedup.internal:8000"))

    assert refused.value.status == 401
    assert refused.value.headers is not None
    assert refused.value.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"x_admin_key": KEY}, id="x-admin-key"),
        pytest.param({"authorization": basic("admin", KEY)}, id="basic-password"),
        pytest.param({"authorization": basic("", KEY)}, id="basic-no-user"),
    ],
)
def test_the_admin_key_admits_a_request_from_anywhere(headers):
    AdminGuard.of(KEY).admit(a_request(peer="10.0.0.7", host="dedup.internal", **headers))


@pytest.mark.parametrize("key", ["clé-ключ-🔑", "café"])
@pytest.mark.parametrize("header", ["x_admin_key", "authorization"])
def test_a_key_beyond_ascii_admits_a_request_that_sends_it_in_utf8(key, header):
    # The client sends UTF-8 bytes; Litestar hands the header over decoded as latin-1.
    value = key if header == "x_admin_key" else basic("admin", key)
    AdminGuard.of(key).admit(a_request(peer="10.0.0.7", host="dedup.internal", **{header: value}))


def test_a_key_beyond_ascii_sent_in_latin1_is_not_the_key():
    # "café" in latin-1 is one byte short of its UTF-8: another key, refused, not a crash.
    scope = {
        "type": "http",
        "method": "GET",
        "headers": [(b"host", b"dedup.internal"), (b"x-admin-key", "café".encode("latin-1"))],
        "client": ("10.0.0.7", 50000),
    }
    assert refusal(AdminGuard.of("café"), ASGIConnection(scope)) == 403  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"x_admin_key": "wrong"}, id="wrong-key"),
        pytest.param({"x_admin_key": KEY[:-1]}, id="prefix-of-the-key"),
        pytest.param({"authorization": basic("admin", "wrong")}, id="wrong-basic"),
    ],
)
def test_a_wrong_key_gets_403_even_from_this_machine(headers):
    assert refusal(AdminGuard.of(KEY), a_request(**headers)) == 403


def test_a_write_key_does_not_open_the_admin_paths():
    # As the Segment SDKs send it: the key as the user name, no password; or as a bearer token.
    guard = AdminGuard.of(KEY)
    for headers in ({"authorization": basic("web-write-key", "")}, {"x_api_key": "web-write-key"}):
        assert refusal(guard, a_request(peer="10.0.0.7", host="dedup.internal", **headers)) == 401


def test_without_an_admin_key_set_no_key_opens_them_from_another_machine():
    guard = AdminGuard.of(None)
    assert refusal(guard, a_request(peer="10.0.0.7", host="x")) == 401
    assert refusal(guard, a_request(peer="10.0.0.7", host="x", x_admin_key="")) == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"x_forwarded_for": "203.0.113.9"},
        {"forwarded": "for=203.0.113.9"},
        {"x_real_ip": "1.2.3.4"},
    ],
)
def test_a_request_a_proxy_on_this_machine_forwarded_is_not_taken_as_local(headers):
    assert refusal(AdminGuard.of(None), a_request(**headers)) == 401


def test_a_loopback_request_under_another_name_is_not_taken_as_local():
    # DNS rebinding: a page at evil.example made its own name resolve to 127.0.0.1.
    assert refusal(AdminGuard.of(None), a_request(host="evil.example:8000")) == 401


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_post_whose_body_is_not_json_is_refused_as_a_page_elsewhere_could_send_it(content_type):
    headers = {} if content_type is None else {"content_type": content_type}
    connection = a_request(method="POST", x_admin_key=KEY, **headers)

    assert refusal(AdminGuard.of(KEY), connection) == 415


def test_a_json_post_from_this_machine_is_admitted():
    connection = a_request(method="POST", content_type="application/json; charset=utf-8")
    AdminGuard.of(None).admit(connection)
