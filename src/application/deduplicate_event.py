"""The worker's use case: the claim protocol of DESIGN.md §3, one batch at a time.

The race §3 step 4 leaves to the merge is settled here instead. Redis loses a claim between one
copy's claim and its insert while a second copy is in flight: both find no owner and both are
inserted. So after its insert a batch asks the repository once more which of its fingerprints
are held by more than one stored event. The event of highest precedence wins — the row
events' ReplacingMergeTree keeps (its version) and the one owners() names — and every
other contender is recorded as a duplicate of it; Redis is pointed at the winner.
Of two racing batches, the one whose insert landed last sees both rows, so at least one settles
the contest; a batch that died between its insert and the check is redelivered, and the retry
checks its already-stored events too (a losing event's retry finds the winner in owners()).
A rival the lookup missed was written after the lookup began, so for the fingerprints a batch
stores new the check searches only what was written since a mark taken before the lookup (its
cost does not grow with the window); already-stored ones are searched over the whole window.
Recording is idempotent: event_duplicates folds by event_id and recorded() skips known rows.

The lookup asks ClickHouse only about fingerprints neither Redis nor the stored filter can
answer. Once a batch has stored its events (and settled any contest), it points their claims
at the stored holder, marked as stored: a copy within DEDUP_CACHE_TTL is recorded against it
without a search. A fingerprint seen for the first time (most of them) costs a few bits in
the filter instead of a search of the window: every event's bits are added before its insert,
so what the filter rules out is not stored, except a rival written after the mark, which the
check above finds. A lost filter rules nothing out until refilled (RefillStoredFilter).
When Redis fails, a batch runs as if it had lost every key (BatchFilters): ClickHouse decides
each fingerprint, and the check above settles the races the missing claims leave open. A
claim is re-pointed only if it still names what the batch's claim saw (a compare-and-set), so
a batch that settled no contest never points a claim back at a loser another batch found.

What is left, each needing a lost claim at the exact moment of a race on top:
- a copy that arrived while the loser held the Redis claim, before the contest was settled, is
  recorded against the loser: a chain copy → loser → winner. Readers resolve chains by
  following original_event_id until it names a stored event;
- contenders received on different UTC days sit in different partitions, which a merge never
  folds, so events keeps both (the loser is then in events and in event_duplicates).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from attrs import define, field, frozen
from dedup.application.batch_filters import BatchFilters
from dedup.application.ports import (
    Claims,
    Contender,
    EventRepository,
    HashCache,
    Repoint,
    StoredFilter,
    WriteMark,
)
from dedup.domain.event import Event, EventId, Holder
from dedup.domain.fingerprint import EventFingerprint
from dedup.domain.outcome import BatchOutcome, Duplicate, DuplicateKind, Outcome


def _grouped(batch: Iterable[Event]) -> dict[EventFingerprint, list[Event]]:
    """Events by fingerprint in arrival order, each event once even if delivered twice."""
    groups: dict[EventFingerprint, list[Event]] = {}
    seen: set[EventId] = set()
    for event in batch:
        if event.event_id not in seen:
            seen.add(event.event_id)
            groups.setdefault(event.fingerprint, []).append(event)
    return groups


def _kind(content: EventFingerprint, original: Holder) -> DuplicateKind:
    return DuplicateKind.CONTENT if content == original.content else DuplicateKind.KEY_CONFLICT


def _losers(fingerprint: EventFingerprint, contenders: Sequence[Contender]) -> list[Duplicate]:
    """Every contender but the first (the winner), recorded as a duplicate of the winner."""
    winner = contenders[0].holder
    return [
        Duplicate(
            event_id=loser.event_id,
            fingerprint=fingerprint,
            original_event_id=winner.event_id,
            received_at=loser.received_at,
            kind=_kind(loser.content, winner),
        )
        for loser in contenders[1:]
    ]


@define
class _Plan:
    """What a batch decided before writing: events to insert, copies and their owners."""

    outcomes: dict[EventId, Outcome] = field(factory=dict)
    to_store: list[Event] = field(factory=list)
    copies: list[tuple[Event, Holder]] = field(factory=list)
    settled: set[EventFingerprint] = field(factory=set)  # stored by this batch's own events
    mark: WriteMark = WriteMark(0)  # taken before the lookup: an insert it missed came later
    held: Claims = field(factory=Claims)  # what the claim saw: what a re-point may replace
    repoint: dict[EventFingerprint, Holder] = field(factory=dict)
    holders: dict[EventFingerprint, Holder] = field(factory=dict)  # of settled, unless known
    known: set[EventFingerprint] = field(factory=set)  # settled, holder marked stored in Redis


@frozen
class DeduplicateEvent:
    """Store each distinct event once; record every later copy against the stored one."""

    cache: HashCache
    events: EventRepository
    seen: StoredFilter

    def execute(self, batch: Sequence[Event]) -> BatchOutcome:
        """What became of each event; PoisonEventError names those the store refuses.

        After a failure the batch may be run again, whole or without its poison: claims are
        never deleted, so a second run finds its own claims and goes on (DESIGN.md §3).
        """
        groups = _grouped(batch)
        if not groups:
            return BatchOutcome(outcomes={}, stored=(), duplicates=())
        filters = BatchFilters(cache=self.cache, seen=self.seen)
        plan = self._plan(groups, filters)
        if plan.to_store:
            filters.add(plan.to_store)  # first: a filter must never rule out a stored event
            self.events.save(events=plan.to_store, duplicates=[])
        winners, losers = self._contests(plan)
        plan.repoint |= winners
        # Every fingerprint this batch settled now has a stored holder: say so in Redis.
        plan.repoint |= {fp: h for fp, h in plan.holders.items() if fp not in plan.repoint}
        duplicates = [
            Duplicate.of(
                event,
                original=(original := winners.get(event.fingerprint, owner)).event_id,
                conflicting=event.content != original.content,
            )
            for event, owner in plan.copies
        ]
        return self._record(plan, [*duplicates, *losers], filters)

    def _plan(self, groups: dict[EventFingerprint, list[Event]], filters: BatchFilters) -> _Plan:
        """Claim, look up, and decide each event: store it, skip it, or record it as a copy."""
        held = filters.claim({fp: group[0].holder for fp, group in groups.items()})
        plan = _Plan(mark=self.events.mark(), held=held)
        # Redis knows some holders are stored; the filter rules out some as never stored.
        unknown = groups.keys() - held.stored
        stored = self.events.owners(unknown - filters.unseen(unknown))
        stored |= {fp: held[fp] for fp in held.stored}
        for fp, group in groups.items():
            owner = stored.get(fp) or held[fp]
            if fp in stored and held[fp] != owner:
                plan.repoint[fp] = owner
            for event in group:
                if event.event_id != owner.event_id:
                    plan.copies.append((event, owner))
                    continue
                plan.settled.add(fp)
                if fp in held.stored:
                    plan.known.add(fp)
                else:
                    plan.holders[fp] = owner
                if fp in stored:
                    plan.outcomes[event.event_id] = Outcome.ALREADY_STORED
                else:
                    plan.outcomes[event.event_id] = Outcome.STORED
                    plan.to_store.append(event)
        return plan

    def _contests(self, plan: _Plan) -> tuple[dict[EventFingerprint, Holder], list[Duplicate]]:
        """The winner of each fingerprint stored twice, and every loser as its duplicate.

        A fingerprint stored new by this batch had no holder when the lookup ran, so a rival
        was written after the mark: only that much is searched. One found already stored (a
        redelivery) may have a rival from any time, e.g. a first attempt that died before
        this check: the whole window is searched for those few.
        """
        new = {event.fingerprint for event in plan.to_store}
        # Redis marks a holder stored only after its batch settled any contest: not again.
        redelivered = plan.settled - new - plan.known
        contested = self.events.contested(new, written_after=plan.mark) if new else {}
        if redelivered:
            contested |= self.events.contested(redelivered)
        winners = {fp: contenders[0].holder for fp, contenders in contested.items()}
        losers = [dup for fp, contenders in contested.items() for dup in _losers(fp, contenders)]
        return winners, losers

    def _record(
        self, plan: _Plan, duplicates: list[Duplicate], filters: BatchFilters
    ) -> BatchOutcome:
        """Write the duplicates not recorded yet, point the cache, say what became of each."""
        already = self.events.recorded(duplicates) if duplicates else set()
        fresh = [dup for dup in duplicates if dup.event_id not in already]
        # A loser from another batch is recorded here too; outcomes speak of this batch only.
        mine = plan.outcomes.keys() | {event.event_id for event, _owner in plan.copies}
        for dup in duplicates:
            if dup.event_id in mine:
                recorded = dup.event_id in already
                plan.outcomes[dup.event_id] = (
                    Outcome.ALREADY_RECORDED if recorded else Outcome.DUPLICATE
                )
        if fresh:
            self.events.save(events=[], duplicates=fresh)
        if plan.repoint:
            filters.point(
                {
                    fp: Repoint(holder=holder, replaces=plan.held[fp])
                    for fp, holder in plan.repoint.items()
                }
            )
        return BatchOutcome(
            outcomes=plan.outcomes,
            stored=tuple(plan.to_store),
            duplicates=tuple(fresh),
            degraded=filters.degraded,
        )
