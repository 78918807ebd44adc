"""Who may use the admin paths (POST /admin/query, the live page): this machine, or the key.

A route opts in with `guards=[admin_only]`; create_app puts the AdminGuard in app.state.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from hashlib import sha256
from typing import Any

from attrs import frozen
from dedup.adapters.inbound.http.errors import RequestRejectedError
from litestar.connection import ASGIConnection
from litestar.datastructures import Headers
from litestar.handlers.base import BaseRouteHandler

# A proxy on this machine sends everyone's requests from loopback, and says so in one of these.
_FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ASK_FOR_THE_KEY = {"WWW-Authenticate": 'Basic realm="dedup admin", charset="UTF-8"'}


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host` (a name other than localhost may be anything)."""
    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(host_header: str) -> str:
    """`localhost:8000` → `localhost`, `[::1]:8000` → `[::1]`."""
    if host_header.startswith("["):
        return host_header.partition("]")[0] + "]"
    return host_header.rpartition(":")[0] if ":" in host_header else host_header


def from_this_machine(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Sent from loopback, straight to us, to a loopback name.

    The name matters as much as the peer: a web page whose own name was made to resolve to
    127.0.0.1 (DNS rebinding) reaches us from loopback, but under that name.
    """
    peer = connection.client.host if connection.client else ""
    headers = connection.headers
    return (
        is_loopback(peer)
        and not any(name in headers for name in _FORWARDED)
        and is_loopback(_host_name(headers.get("host", "")))
    )


def _presented(headers: Headers) -> bytes | None:
    """`X-Admin-Key: KEY`, or HTTP Basic with KEY as the password (what a browser asks for).

    The key as the client sent it, in bytes: Litestar decodes header values as latin-1, so
    encoding back as latin-1 undoes that, and a UTF-8 key meets the UTF-8 of DEDUP_ADMIN_KEY.
    """
    key = headers.get("x-admin-key")
    if key is not None:
        return key.encode("latin-1")
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        _user, _, password = base64.b64decode(token.strip(), validate=True).partition(b":")
    except binascii.Error:
        return None
    return password or None  # a write key travels as the user name, with no password


def _digest(secret: bytes) -> bytes:
    # Fixed-size digests: the comparison leaks neither the key nor its length.
    return sha256(secret).digest()


@frozen
class AdminGuard:
    """Admits a request from this machine, or one carrying the admin key; 401/403 otherwise."""

    digest: bytes | None  # of DEDUP_ADMIN_KEY; None: this machine only

    @classmethod
    def of(cls, admin_key: str | None) -> AdminGuard:
        if not admin_key:
            return cls(None)
        # os.environ holds bytes that are not UTF-8 as surrogates; this gives them back as sent.
        return cls(_digest(admin_key.encode("utf-8", errors="surrogateescape")))

    def admit(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        """Return when the request may go on; raise RequestRejectedError when not."""
        if connection.scope.get("method", "GET") not in _SAFE_METHODS:
            # A page on another site may POST a form or text/plain here without asking first
            # (and the browser adds a remembered Basic key); JSON it cannot send unasked.
            content_type = connection.headers.get("content-type", "")
            if content_type.partition(";")[0].strip().lower() != "application/json":
                raise RequestRejectedError(
                    415, "unsupported_media_type", "send the body as application/json"
                )
        key = _presented(connection.headers)
        if key is not None:
            if self.digest is not None and hmac.compare_digest(_digest(key), self.digest):
                return
            # Even from this machine: a wrong key is a mistake worth hearing about.
            raise RequestRejectedError(403, "forbidden", "the admin key is not valid")
        if from_this_machine(connection):
            return
        detail = (
            "admin paths answer this machine, or a request with DEDUP_ADMIN_KEY as X-Admin-Key"
            if self.digest is not None
            else "admin paths answer this machine only: set DEDUP_ADMIN_KEY to reach them"
        )
        raise RequestRejectedError(401, "unauthorized", detail, headers=_ASK_FOR_THE_KEY)


def admin_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A Litestar guard (`guards=[admin_only]`): the app's AdminGuard admits the request."""
    guard: AdminGuard = connection.app.state.admin_guard
    guard.admit(connection)
