"""One working in-memory fake per port, shared by the unit tests through conftest."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from attrs import Factory, define

from application.ports import Contender, EventRepository, HashCache, Queue, WriteMark
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
    """`stored` is the raw events table (a race may leave a fingerprint twice); `final()` folds
    it as ReplacingMergeTree does. `unseen` ids are stored but missed by owners(), as when the
    lookup of a racing batch ran just before their insert landed. `crash_after_insert` makes
    the next events insert land and then the repository go down, as a worker dying between
    its insert and the check after it."""

    stored: list[Event] = Factory(list)
    duplicates: list[Duplicate] = Factory(list)
    down: bool = False
    window_seconds: int = 30 * 24 * 3600
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    unseen: set[EventId] = Factory(set)
    crash_after_insert: bool = False
    # The write order: each save() is one tick; rows put into `stored` directly are tick 0,
    # and `unseen` ones count as written after every mark (their insert "lands later").
    tick: int = 0
    written: dict[EventId, int] = Factory(dict)

    def mark(self) -> WriteMark:
        self._check()
        return WriteMark(self.tick)

    def owners(self, fingerprints: Collection[EventFingerprint]) -> dict[EventFingerprint, Holder]:
        self._check()
        return {
            fp: contenders[0].holder
            for fp, contenders in self._holders(fingerprints, skip=self.unseen).items()
        }

    def contested(
        self, fingerprints: Collection[EventFingerprint], *, written_after: WriteMark | None = None
    ) -> dict[EventFingerprint, list[Contender]]:
        """Exactly the holders written after the mark when one is given (the port allows more)."""
        self._check()
        skip = set() if written_after is None else self._written_by(written_after)
        return {
            fp: contenders
            for fp, contenders in self._holders(fingerprints, skip=skip).items()
            if len(contenders) > 1
        }

    def recorded(self, duplicates: Collection[Duplicate]) -> set[EventId]:
        self._check()
        wanted = {dup.event_id for dup in duplicates}
        return {dup.event_id for dup in self.duplicates if dup.event_id in wanted}

    def save(self, *, events: Sequence[Event], duplicates: Sequence[Duplicate]) -> None:
        self._check()
        if events:
            self.tick += 1
            for event in events:
                self.written.setdefault(event.event_id, self.tick)
        self.stored.extend(events)
        known = {dup.event_id for dup in self.duplicates}
        self.duplicates.extend(dup for dup in duplicates if dup.event_id not in known)
        if events and self.crash_after_insert:
            self.crash_after_insert, self.down = False, True

    def final(self) -> list[Event]:
        """The events table as a read with FINAL sees it: the smallest id per fingerprint."""
        kept: dict[EventFingerprint, Event] = {}
        for event in sorted(self.stored, key=lambda e: e.event_id):
            kept.setdefault(event.fingerprint, event)
        return list(kept.values())

    def _holders(
        self, fingerprints: Collection[EventFingerprint], *, skip: set[EventId]
    ) -> dict[EventFingerprint, list[Contender]]:
        wanted = set(fingerprints)
        since = self.clock() - timedelta(seconds=self.window_seconds)
        found: dict[EventFingerprint, list[Contender]] = {}
        for event in sorted(self.stored, key=lambda e: e.event_id):
            if event.fingerprint in wanted and event.received_at >= since:
                if event.event_id in skip:
                    continue
                contenders = found.setdefault(event.fingerprint, [])
                if all(c.event_id != event.event_id for c in contenders):
                    contenders.append(
                        Contender(
                            event_id=event.event_id,
                            content=event.content,
                            received_at=event.received_at,
                        )
                    )
        return found

    def _written_by(self, mark: WriteMark) -> set[EventId]:
        """Ids of the stored events written at or before the mark."""
        return {
            event.event_id
            for event in self.stored
            if event.event_id not in self.unseen and self.written.get(event.event_id, 0) <= mark
        }

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
