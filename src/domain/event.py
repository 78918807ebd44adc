"""An accepted event, as it travels from the API to storage."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import NewType
from uuid import UUID

from attrs import frozen
from dedup.domain.fingerprint import EventFingerprint, canonical_json

EventId = NewType("EventId", UUID)


class _RandomPool:
    """os.urandom drawn a block at a time: one getrandom call per 409 ids rather than per id.

    Measured under the batch load, a urandom call per id was ~10% of the API's CPU. The
    bytes are the same CSPRNG output, each handed out once: a lock for threads, and a fork
    empties the pool so parent and child never share bytes (they would share ids).
    """

    def __init__(self, block: int = 4096) -> None:
        self._block = block
        self._lock = threading.Lock()
        self._empty()
        os.register_at_fork(after_in_child=self._empty)

    def _empty(self) -> None:
        self._bytes = b""
        self._at = 0

    def take(self, count: int) -> bytes:
        with self._lock:
            if self._at + count > len(self._bytes):
                self._bytes, self._at = os.urandom(max(self._block, count)), 0
            taken = self._bytes[self._at : self._at + count]
            self._at += count
            return taken


_RANDOM = _RandomPool()


def uuid7(*, unix_ms: int | None = None, random: bytes | None = None) -> EventId:
    """A time-ordered UUID (RFC 9562 version 7)."""
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    tail = _RANDOM.take(10) if random is None else random
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= (int.from_bytes(tail[:2], "big") & 0x0FFF) << 64
    value |= 0b10 << 62
    value |= int.from_bytes(tail[2:], "big") & 0x3FFF_FFFF_FFFF_FFFF
    return EventId(UUID(int=value))


@frozen
class Holder:
    """Who holds a fingerprint: the owning event and the digest of its content."""

    event_id: EventId
    content: EventFingerprint


@frozen
class Event:
    """One accepted event: its identity, when it arrived, from whom, and what it said."""

    event_id: EventId
    fingerprint: EventFingerprint
    content: EventFingerprint
    received_at: datetime
    source: str
    payload: str

    @classmethod
    def accept(
        cls,
        payload: Mapping[str, object],
        *,
        event_id: EventId,
        received_at: datetime,
        source: str,
        ignore: frozenset[str],
        key: str | None = None,
    ) -> Event:
        """Build an event; a key, when given, is its identity instead of its content."""
        canonical = canonical_json(payload)
        # Nothing to ignore in this payload: its canonical form is the content's, encode once.
        if ignore.isdisjoint(payload):
            content = EventFingerprint.of_bytes(canonical)
        else:
            content = EventFingerprint.of(payload, ignore=ignore)
        fingerprint = content if key is None else EventFingerprint.of_key(source=source, key=key)
        return cls(
            event_id=event_id,
            fingerprint=fingerprint,
            content=content,
            received_at=received_at,
            source=source,
            payload=canonical.decode("utf-8"),
        )

    @property
    def holder(self) -> Holder:
        return Holder(event_id=self.event_id, content=self.content)
