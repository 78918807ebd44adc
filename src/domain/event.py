"""An accepted event, as it travels from the API to storage."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from hashlib import blake2b
from typing import NewType
from uuid import UUID

from attrs import Factory, field, frozen
from dedup.domain.fingerprint import EventFingerprint, canonical_json
from dedup.domain.standard_fields import StandardFields

EventId = NewType("EventId", UUID)


def uuid7(*, unix_ms: int, random: bytes) -> EventId:
    """The time-ordered UUID (RFC 9562 version 7) of a millisecond and 10 random bytes."""
    value = (unix_ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= (int.from_bytes(random[:2], "big") & 0x0FFF) << 64
    value |= 0b10 << 62
    value |= int.from_bytes(random[2:10], "big") & 0x3FFF_FFFF_FFFF_FFFF
    return EventId(UUID(int=value))


def precedence(event_id: UUID) -> int:
    """Which of the events stored with one fingerprint stays: the one of highest precedence.

    It is the version events' ReplacingMergeTree keeps the largest of, so it must never tie
    for two events, and a version has 64 bits. An id's upper half does not do: ids made in one
    millisecond by one process share it (uuid-utils counts below it), and the merge keeps the
    later insert of two equal versions, not the event the contest chose. 64 bits of a hash of
    the whole id tie once in 2**64 pairs; whichever copy of a race it favours is as good.
    """
    return int.from_bytes(blake2b(event_id.bytes, digest_size=8).digest(), "big")


@frozen
class Holder:
    """Who holds a fingerprint: the owning event and the digest of its content."""

    event_id: EventId
    content: EventFingerprint


def _standard_of_payload(event: Event) -> StandardFields:
    return StandardFields.of_json(event.payload)


@frozen
class Event:
    """One accepted event: its identity, when it arrived, from whom, and what it said.

    `standard` is read from the payload unless given; hot paths give it (parsing the stored
    JSON again costs more than the rest of an event's trip through the worker).
    """

    event_id: EventId
    fingerprint: EventFingerprint
    content: EventFingerprint
    received_at: datetime
    source: str
    payload: str
    standard: StandardFields = field(default=Factory(_standard_of_payload, takes_self=True))

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
            standard=StandardFields.of(payload),
        )

    @property
    def holder(self) -> Holder:
        return Holder(event_id=self.event_id, content=self.content)
