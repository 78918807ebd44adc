"""The identity of an event: BLAKE2b-128 over its canonical form."""

from __future__ import annotations

import json
from collections.abc import Mapping
from hashlib import blake2b

from attrs import field, frozen

DIGEST_SIZE = 16


def canonical_json(value: object) -> bytes:
    """Keys sorted at every level, no insignificant whitespace, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _sixteen_bytes(_instance: object, _attribute: object, value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != DIGEST_SIZE:
        raise ValueError(f"a fingerprint is {DIGEST_SIZE} bytes, got {value!r}")


@frozen
class EventFingerprint:
    """Two events are the same event when their fingerprints are equal."""

    digest: bytes = field(validator=_sixteen_bytes)

    @classmethod
    def of(cls, payload: Mapping[str, object], *, ignore: frozenset[str]) -> EventFingerprint:
        kept = {key: value for key, value in payload.items() if key not in ignore}
        return cls.of_bytes(canonical_json(kept))

    @classmethod
    def of_key(cls, *, source: str, key: str) -> EventFingerprint:
        """The identity of an event that names itself with an idempotency key."""
        return cls.of_bytes(canonical_json(["key", source, key]))

    @classmethod
    def of_bytes(cls, data: bytes) -> EventFingerprint:
        return cls(blake2b(data, digest_size=DIGEST_SIZE).digest())

    @classmethod
    def from_hex(cls, text: str) -> EventFingerprint:
        return cls(bytes.fromhex(text))

    @property
    def hex(self) -> str:
        return self.digest.hex()

    def __str__(self) -> str:
        return self.hex
