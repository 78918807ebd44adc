"""Write keys: which named client sent an ingest request."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from hashlib import sha256

from attrs import frozen
from dedup.adapters.inbound.http.errors import RequestRejectedError
from litestar.datastructures import Headers

DEFAULT_SOURCE = "default"


def _digest(secret: bytes) -> bytes:
    # Comparing fixed-size digests keeps the comparison from leaking a secret's length.
    return sha256(secret).digest()


def _presented(headers: Headers) -> str | None:
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return headers.get("x-api-key")


@frozen
class WriteKeys:
    """Named secrets; with none configured every request is anonymous and comes from "default"."""

    digests: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, api_keys: Mapping[str, str]) -> WriteKeys:
        """Keys from name → secret; refuses empty secrets and a secret shared by two names."""
        if any(not name or not secret for name, secret in api_keys.items()):
            raise ValueError("every API key needs a non-empty name and secret")
        if len(set(api_keys.values())) != len(api_keys):
            raise ValueError("two API key names share one secret; each name needs its own")
        return cls(
            tuple((name, _digest(secret.encode("utf-8"))) for name, secret in api_keys.items())
        )

    def source_of(self, headers: Headers) -> str:
        """The name of the key the request carries; raise a 401 rejection when it carries none."""
        if not self.digests:
            return DEFAULT_SOURCE
        secret = _presented(headers)
        if secret is None:
            raise RequestRejectedError(
                401, "unauthorized", "send a write key as 'Authorization: Bearer' or 'X-API-Key'"
            )
        given = _digest(secret.encode("latin-1"))  # header values arrive decoded as latin-1
        found: str | None = None
        for name, digest in self.digests:  # no early exit: every key costs the same
            if hmac.compare_digest(given, digest):
                found = name
        if found is None:
            raise RequestRejectedError(401, "unauthorized", "the write key is not valid")
        return found
