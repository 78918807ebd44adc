"""One working in-memory fake per port, shared by the unit tests through conftest."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from attrs import Factory, define
from dedup.application.ports import (
    Claims,
    Contender,
    EventRepository,
    FilterGap,
    FilterRefill,
    FingerprintHistory,
    HashCache,
    Queue,
    Repoint,
    StoredFilter,
    StoreOverview,
    StoreQuery,
    WriteMark,
)
from dedup.domain.errors import BackendUnavailableError, PoisonEventError
from dedup.domain.event import Event, EventId, Holder, precedence
from dedup.domain.fingerprint import EventFingerprint
from dedup.domain.outcome import Duplicate, DuplicateKind
from dedup.domain.overview import LatestEvent, StoreCounts
from dedup.domain.query import QueryLimits, QueryRefusedError, QueryResult, Refusal, ResultColumn


@define
class FakeHashCache(HashCache):
    """`down` fails every call as an unreachable Redis does (BackendUnavailableError);
    `down_after_claim` makes it go down right after the next claim."""

    claims: dict[EventFingerprint, Holder] = Factory(dict)
    stored: set[EventFingerprint] = Factory(set)  # pointed at a stored holder
    down: bool = False
    down_after_claim: bool = False

    def claim(self, owners: Mapping[EventFingerprint, Holder]) -> Claims:
        self._check()
        held = {fp: self.claims.setdefault(fp, holder) for fp, holder in owners.items()}
        self.down, self.down_after_claim = self.down or self.down_after_claim, False
        return Claims(held, stored=self.stored & held.keys())

    def point(self, repoints: Mapping[EventFingerprint, Repoint]) -> None:
        self._check()
        for fp, repoint in repoints.items():
            named = self.claims[fp].event_id if fp in self.claims else None
            if named in (repoint.replaces.event_id, repoint.holder.event_id):
                self.claims[fp] = repoint.holder
                self.stored.add(fp)

    def flush(self) -> None:
        self.claims.clear()
        self.stored.clear()

    def _check(self) -> None:
        if self.down:
            raise BackendUnavailableError("redis", "connection refused")


@define
class FakeStoredFilter(StoredFilter, FilterRefill):
    """An exact filter (no false positives) with the real one's states: a new or lost filter
    rules nothing out until a refill that no loss interrupted has finished. `down` fails
    every call as an unreachable Redis does; an add that failed so makes the filter
    incomplete at its next call once it is back, as the real one does."""

    known: set[EventFingerprint] = Factory(set)
    state: str = "incomplete"  # or "refilling", "complete"
    since: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    down: bool = False
    refills: int = 0
    lost_adds: bool = False

    @classmethod
    def complete(cls) -> FakeStoredFilter:
        return cls(state="complete")

    def unseen(self, fingerprints: Collection[EventFingerprint]) -> set[EventFingerprint]:
        self._check()
        return set(fingerprints) - self.known if self.state == "complete" else set()

    def add(self, events: Sequence[Event]) -> None:
        if self.down:
            self.lost_adds = True
        self._check()
        self.known.update(event.fingerprint for event in events)

    def lose(self) -> None:
        """Redis flushed or restarted empty: the bits and the state go together."""
        self.known.clear()
        self.state = "incomplete"

    def gaps(self) -> list[FilterGap]:
        self._check()
        return [] if self.state == "complete" else [FilterGap(name="fake", since=self.since)]

    def begin(self, gap: FilterGap) -> bool:
        if self.state != "incomplete":
            return False
        self.state = "refilling"
        return True

    def finish(self, gap: FilterGap, fingerprints: Iterable[EventFingerprint]) -> bool:
        added = set(fingerprints)
        if self.state != "refilling":
            return False
        self.known |= added
        self.state = "complete"
        self.refills += 1
        return True

    def _check(self) -> None:
        if self.down:
            raise BackendUnavailableError("redis", "connection refused")
        if self.lost_adds:
            self.lost_adds, self.state = False, "incomplete"


@define
class FakeEventRepository(EventRepository, FingerprintHistory, StoreOverview):
    """`stored` is the raw events table (a race may leave a fingerprint twice); `final()` folds
    it as ReplacingMergeTree does. `unseen` ids are stored but missed by owners(), as when the
    lookup of a racing batch ran just before their insert landed. `crash_after_insert` makes
    the next events insert land and then the repository go down, as a worker dying between
    its insert and the check after it. An event whose content is in `refuses` is one the store
    refuses (a poison): save() raises PoisonEventError naming it and stores nothing."""

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
    looked_up: set[EventFingerprint] = Factory(set)  # every fingerprint owners() searched for
    searched_window: set[EventFingerprint] = Factory(set)  # contested() over the whole window
    refuses: set[EventFingerprint] = Factory(set)

    def mark(self) -> WriteMark:
        self._check()
        return WriteMark(self.tick)

    def owners(self, fingerprints: Collection[EventFingerprint]) -> dict[EventFingerprint, Holder]:
        self._check()
        self.looked_up.update(fingerprints)
        return {
            fp: contenders[0].holder
            for fp, contenders in self._holders(fingerprints, skip=self.unseen).items()
        }

    def contested(
        self, fingerprints: Collection[EventFingerprint], *, written_after: WriteMark | None = None
    ) -> dict[EventFingerprint, list[Contender]]:
        """Exactly the holders written after the mark when one is given (the port allows more)."""
        self._check()
        if written_after is None:
            self.searched_window.update(fingerprints)
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
        refused = [event.event_id for event in events if event.content in self.refuses]
        if refused:
            raise PoisonEventError("the store refuses this content", event_ids=refused)
        if events:
            self.tick += 1
            for event in events:
                self.written.setdefault(event.event_id, self.tick)
        self.stored.extend(events)
        known = {dup.event_id for dup in self.duplicates}
        self.duplicates.extend(dup for dup in duplicates if dup.event_id not in known)
        if events and self.crash_after_insert:
            self.crash_after_insert, self.down = False, True

    def received_since(self, moment: datetime) -> Iterator[EventFingerprint]:
        self._check()
        return iter([e.fingerprint for e in self.stored if e.received_at >= moment])

    def counts(self) -> StoreCounts:
        self._check()
        kinds = [dup.kind for dup in self.duplicates]
        return StoreCounts(
            stored=len(self.stored), duplicates={kind: kinds.count(kind) for kind in DuplicateKind}
        )

    def latest(self, *, since: datetime, limit: int, preview: int) -> list[LatestEvent]:
        self._check()
        recent = [event for event in self.stored if event.received_at >= since]
        recent.sort(key=lambda e: (e.received_at, e.event_id), reverse=True)
        return [
            LatestEvent.of(
                event_id=event.event_id,
                received_at=event.received_at,
                source=event.source,
                payload=event.payload,
                copies=sum(dup.original_event_id == event.event_id for dup in self.duplicates),
                preview=preview,
            )
            for event in recent[:limit]
        ]

    def final(self) -> list[Event]:
        """The events table as a read with FINAL sees it: the highest precedence per fingerprint."""
        kept: dict[EventFingerprint, Event] = {}
        for event in sorted(self.stored, key=lambda e: precedence(e.event_id), reverse=True):
            kept.setdefault(event.fingerprint, event)
        return list(kept.values())

    def _holders(
        self, fingerprints: Collection[EventFingerprint], *, skip: set[EventId]
    ) -> dict[EventFingerprint, list[Contender]]:
        wanted = set(fingerprints)
        since = self.clock() - timedelta(seconds=self.window_seconds)
        found: dict[EventFingerprint, list[Contender]] = {}
        for event in sorted(self.stored, key=lambda e: precedence(e.event_id), reverse=True):
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


@define
class FakeStoreQuery(StoreQuery):
    """Answers the statements it was given answers for, cut to the limit; refuses the rest.

    `refusals` says how the engine would refuse a statement (a write, a timeout); any other
    statement names no table the fake knows.
    """

    answers: dict[str, tuple[tuple[ResultColumn, ...], list[tuple[object, ...]]]] = Factory(dict)
    refusals: dict[str, Refusal] = Factory(dict)
    down: bool = False

    def run(self, sql: str, *, limits: QueryLimits) -> QueryResult:
        if self.down:
            raise BackendUnavailableError("clickhouse")
        if sql in self.refusals:
            raise QueryRefusedError(f"refused: {sql}", refusal=self.refusals[sql])
        if sql not in self.answers:
            raise QueryRefusedError(f"no table answers {sql!r}", refusal=Refusal.INVALID)
        columns, rows = self.answers[sql]
        return QueryResult.cut(columns, rows, limit=limits.rows)
