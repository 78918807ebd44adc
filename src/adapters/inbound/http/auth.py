"""Write keys: which named client sent an ingest request."""

from __future__ import annotations

import binascii
import hmac
from base64 import b64decode
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


def basic_user(headers: Headers) -> str | None:
    """The user name of `Authorization: Basic`, where Segment's SDKs send the write key."""
    authorization = headers.get("authorization")
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, _password = b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise RequestRejectedError(
            401, "unauthorized", "the Basic credentials are not base64 of 'key:'"
        ) from None
    return user or None


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
        # Header values arrive decoded as latin-1: encoding them back gives the sent bytes.
        return self._named(secret.encode("latin-1"))

    def source_of_tracking(self, headers: Headers, body_key: str | None) -> str:
        """The source of a Tracking API request: a key in Basic, in the body, or as above."""
        if not self.digests:
            return DEFAULT_SOURCE
        secret = basic_user(headers)
        if secret is not None:
            return self._named(secret.encode("utf-8"))
        if body_key is not None:
            return self._named(body_key.encode("utf-8"))
        if _presented(headers) is None:
            raise RequestRejectedError(
                401, "unauthorized", "send the write key as HTTP Basic user or as writeKey"
            )
        return self.source_of(headers)

    def source_named_by(self, secret: str) -> str | None:
        """The source a write key names, or None; with no keys configured, "default"."""
        if not self.digests:
            return DEFAULT_SOURCE
        try:
            return self._named(secret.encode("utf-8"))
        except RequestRejectedError:
            return None

    def _named(self, secret: bytes) -> str:
        given = _digest(secret)
        found: str | None = None
        for name, digest in self.digests:  # no early exit: every key costs the same
            if hmac.compare_digest(given, digest):
                found = name
        if found is None:
            raise RequestRejectedError(401, "unauthorized", "the write key is not valid")
        return found
