"""One working in-memory fake per port, shared by the unit tests through conftest."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from attrs import Factory, define

from application.ports import EventRepository, HashCache, Queue
from domain.errors import BackendUnavailableError
from domain.event import Event, EventId, Holder
from domain.fingerprint import EventFingerprint
from domain.outcome import Duplicate


@define
class FakeHashCache(HashCache):
    claims: dict[EventFingerprint, Holder] = Factory(dict)
    down: bool = False

    def claim(self, owners: Mapping[EventFingerprint, Holder]) -> dict[EventFingerprint, Holder]:
        self._check()
        return {fp: self.claims.setdefault(fp, holder) for fp, holder in owners.items()}

    def point(self, holders: Mapping[EventFingerprint, Holder]) -> None:
        self._check()
        self.claims.update(holders)

    def flush(self) -> None:
        self.claims.clear()

    def _check(self) -> None:
        if self.down:
            raise BackendUnavailableError("cache")


@define
class FakeEventRepository(EventRepository):
    stored: list[Event] = Factory(list)
    duplicates: list[Duplicate] = Factory(list)
    down: bool = False
    window_seconds: int = 30 * 24 * 3600
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def owners(self, fingerprints: Collection[EventFingerprint]) -> dict[EventFingerprint, Holder]:
        self._check()
        wanted = set(fingerprints)
        since = self.clock() - timedelta(seconds=self.window_seconds)
        found: dict[EventFingerprint, Holder] = {}
        for event in sorted(self.stored, key=lambda e: e.event_id):
            if event.fingerprint in wanted and event.received_at >= since:
                found.setdefault(event.fingerprint, event.holder)
        return found

    def recorded(self, duplicates: Collection[Duplicate]) -> set[EventId]:
        self._check()
        wanted = {dup.event_id for dup in duplicates}
        return {dup.event_id for dup in self.duplicates if dup.event_id in wanted}

    def save(self, *, events: Sequence[Event], duplicates: Sequence[Duplicate]) -> None:
        self._check()
        self.stored.extend(events)
        known = {dup.event_id for dup in self.duplicates}
        self.duplicates.extend(dup for dup in duplicates if dup.event_id not in known)

    def _check(self) -> None:
        if self.down:
            raise BackendUnavailableError("clickhouse")


@define
class FakeQueue(Queue):
    queued: list[Event] = Factory(list)
    down: bool = False

    async def put(self, events: Sequence[Event]) -> None:
        if self.down:
            raise BackendUnavailableError("broker")
        self.queued.extend(events)
