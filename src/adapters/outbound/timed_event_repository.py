"""Any EventRepository, its lookups and inserts timed into dedup_lookup_seconds and _insert_."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence

from attrs import frozen
from dedup.adapters.metrics import record_insert, record_lookup
from dedup.application.ports import Contender, EventRepository, WriteMark
from dedup.domain.event import Event, EventId, Holder
from dedup.domain.fingerprint import EventFingerprint
from dedup.domain.outcome import Duplicate


@frozen
class TimedEventRepository(EventRepository):
    """Delegates every call to `inner`; successful owners() and save() calls are timed."""

    inner: EventRepository

    def owners(self, fingerprints: Collection[EventFingerprint]) -> dict[EventFingerprint, Holder]:
        started = time.perf_counter()
        found = self.inner.owners(fingerprints)
        record_lookup(time.perf_counter() - started)
        return found

    def mark(self) -> WriteMark:
        return self.inner.mark()

    def contested(
        self, fingerprints: Collection[EventFingerprint], *, written_after: WriteMark | None = None
    ) -> dict[EventFingerprint, list[Contender]]:
        return self.inner.contested(fingerprints, written_after=written_after)

    def recorded(self, duplicates: Collection[Duplicate]) -> set[EventId]:
        return self.inner.recorded(duplicates)

    def save(self, *, events: Sequence[Event], duplicates: Sequence[Duplicate]) -> None:
        started = time.perf_counter()
        self.inner.save(events=events, duplicates=duplicates)
        # A failed insert is not timed: it shows up as dedup_retries_total instead.
        record_insert(time.perf_counter() - started)
