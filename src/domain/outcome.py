"""What deduplication decided about each event of a batch."""

from __future__ import annotations

import enum
from datetime import datetime

from attrs import frozen
from dedup.domain.event import Event, EventId
from dedup.domain.fingerprint import EventFingerprint


class DuplicateKind(enum.Enum):
    CONTENT = "content"
    KEY_CONFLICT = "key_conflict"


@frozen
class Duplicate:
    """A later copy of a stored event, recorded against the original."""

    event_id: EventId
    fingerprint: EventFingerprint
    original_event_id: EventId
    received_at: datetime
    kind: DuplicateKind

    @classmethod
    def of(cls, event: Event, *, original: EventId, conflicting: bool) -> Duplicate:
        return cls(
            event_id=event.event_id,
            fingerprint=event.fingerprint,
            original_event_id=original,
            received_at=event.received_at,
            kind=DuplicateKind.KEY_CONFLICT if conflicting else DuplicateKind.CONTENT,
        )


class Outcome(enum.Enum):
    STORED = "stored"
    ALREADY_STORED = "already_stored"
    DUPLICATE = "duplicate"
    ALREADY_RECORDED = "already_recorded"


@frozen
class BatchOutcome:
    """The fate of every event in a batch, and the rows written for them."""

    outcomes: dict[EventId, Outcome]
    stored: tuple[Event, ...]
    duplicates: tuple[Duplicate, ...]
    # The cache or the stored filter failed: ClickHouse alone decided every fingerprint.
    degraded: bool = False

    def count(self, outcome: Outcome) -> int:
        return sum(1 for value in self.outcomes.values() if value is outcome)
