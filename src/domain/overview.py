"""What a person watching the service sees of the store: its counts and its newest events."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from attrs import field, frozen
from dedup.domain.event import EventId
from dedup.domain.outcome import DuplicateKind


def _every_kind(counts: Mapping[DuplicateKind, int]) -> Mapping[DuplicateKind, int]:
    return {kind: counts.get(kind, 0) for kind in DuplicateKind}


@frozen
class StoreCounts:
    """Events stored and duplicates recorded, by kind (every kind present, zero or not)."""

    stored: int
    duplicates: Mapping[DuplicateKind, int] = field(converter=_every_kind, factory=dict)


@frozen
class LatestEvent:
    """A stored event, its payload cut to a preview, and how many copies of it are recorded."""

    event_id: EventId
    received_at: datetime
    source: str
    preview: str
    truncated: bool
    copies: int

    @classmethod
    def of(
        cls,
        *,
        event_id: EventId,
        received_at: datetime,
        source: str,
        payload: str,
        copies: int,
        preview: int,
    ) -> LatestEvent:
        """Cut the payload to `preview` characters."""
        return cls(
            event_id=event_id,
            received_at=received_at,
            source=source,
            preview=payload[:preview],
            truncated=len(payload) > preview,
            copies=copies,
        )
