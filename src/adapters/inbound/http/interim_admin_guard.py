"""Who may open the admin paths: loopback clients, or a request carrying the admin key.

A stand-in with the rule of admin_guard.py (issue 15's query path), until that module lands;
the composition root (infrastructure/asgi.py) is the one place that picks the guard.
"""

from __future__ import annotations

import hmac
import ipaddress
from hashlib import sha256
from typing import Any

from dedup.adapters.inbound.http.errors import RequestRejectedError
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.types import Guard


def is_loopback_peer(host: str | None) -> bool:
    """Whether the peer address is this machine's own (IPv4-mapped IPv6 included)."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _presented(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return connection.headers.get("x-admin-key")


def admin_guard(admin_key: str | None) -> Guard:
    """Lets loopback through, and others only with `admin_key` (never with a write key)."""
    expected = None if admin_key is None else sha256(admin_key.encode("utf-8")).digest()

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        if is_loopback_peer(connection.client.host if connection.client else None):
            return
        if expected is None:
            raise RequestRejectedError(
                403,
                "forbidden",
                "the admin paths answer on loopback only unless DEDUP_ADMIN_KEY is set",
            )
        secret = _presented(connection)
        given = None if secret is None else sha256(secret.encode("latin-1")).digest()
        if given is None or not hmac.compare_digest(given, expected):
            raise RequestRejectedError(
                401,
                "unauthorized",
                "send the admin key as 'X-Admin-Key' or 'Authorization: Bearer'",
            )

    return guard
