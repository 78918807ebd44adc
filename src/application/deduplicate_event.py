"""The worker's use case: the claim protocol of DESIGN.md §3, one batch at a time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from attrs import frozen

from application.ports import EventRepository, HashCache
from domain.event import Event, EventId, Holder
from domain.fingerprint import EventFingerprint
from domain.outcome import BatchOutcome, Duplicate, Outcome


def _grouped(batch: Iterable[Event]) -> dict[EventFingerprint, list[Event]]:
    """Events by fingerprint in arrival order, each event once even if delivered twice."""
    groups: dict[EventFingerprint, list[Event]] = {}
    seen: set[EventId] = set()
    for event in batch:
        if event.event_id not in seen:
            seen.add(event.event_id)
            groups.setdefault(event.fingerprint, []).append(event)
    return groups


@frozen
class DeduplicateEvent:
    """Store each distinct event once; record every later copy against the stored one."""

    cache: HashCache
    events: EventRepository

    def execute(self, batch: Sequence[Event]) -> BatchOutcome:
        groups = _grouped(batch)
        if not groups:
            return BatchOutcome(outcomes={}, stored=(), duplicates=())
        held = self.cache.claim({fp: group[0].holder for fp, group in groups.items()})
        stored = self.events.owners(groups.keys())

        outcomes: dict[EventId, Outcome] = {}
        to_store: list[Event] = []
        duplicates: list[Duplicate] = []
        repoint: dict[EventFingerprint, Holder] = {}
        for fp, group in groups.items():
            owner = stored.get(fp) or held[fp]
            if fp in stored and held[fp] != owner:
                repoint[fp] = owner
            for event in group:
                if event.event_id != owner.event_id:
                    duplicates.append(
                        Duplicate.of(
                            event,
                            original=owner.event_id,
                            conflicting=event.content != owner.content,
                        )
                    )
                elif fp in stored:
                    outcomes[event.event_id] = Outcome.ALREADY_STORED
                else:
                    outcomes[event.event_id] = Outcome.STORED
                    to_store.append(event)

        already = self.events.recorded(duplicates) if duplicates else set()
        fresh = [dup for dup in duplicates if dup.event_id not in already]
        for dup in duplicates:
            outcomes[dup.event_id] = (
                Outcome.ALREADY_RECORDED if dup.event_id in already else Outcome.DUPLICATE
            )
        if to_store or fresh:
            self.events.save(events=to_store, duplicates=fresh)
        if repoint:
            self.cache.point(repoint)
        return BatchOutcome(outcomes=outcomes, stored=tuple(to_store), duplicates=tuple(fresh))
