"""The ports: what the use cases need from the world, in the domain's words."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from domain.event import Event, EventId, Holder
from domain.fingerprint import EventFingerprint
from domain.outcome import Duplicate


class HashCache(Protocol):
    """The hot part of the dedup window: who claimed each fingerprint first."""

    def claim(self, owners: Mapping[EventFingerprint, Holder]) -> dict[EventFingerprint, Holder]:
        """Claim each fingerprint for its holder unless held; return who holds each one now."""
        ...

    def point(self, holders: Mapping[EventFingerprint, Holder]) -> None:
        """Make each fingerprint point at the given holder, whatever it held before."""
        ...


class EventRepository(Protocol):
    """ClickHouse, the truth: stored events, their fingerprints, recorded duplicates."""

    def owners(self, fingerprints: Collection[EventFingerprint]) -> dict[EventFingerprint, Holder]:
        """The stored owner of each fingerprint in the dedup window; absent means none."""
        ...

    def recorded(self, duplicates: Collection[Duplicate]) -> set[EventId]:
        """The ids among these duplicates that are recorded already."""
        ...

    def save(self, *, events: Sequence[Event], duplicates: Sequence[Duplicate]) -> None:
        """Store the events with their fingerprints, then record the duplicates."""
        ...


class Queue(Protocol):
    """The durable hand-off from the API to the workers."""

    async def put(self, events: Sequence[Event]) -> None:
        """Return once every event is durably queued; raise BackendUnavailableError if not."""
        ...
