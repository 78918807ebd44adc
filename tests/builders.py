"""Small builders for domain objects in tests."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import UTC, datetime

from dedup.domain.event import Event, uuid7

_counter = itertools.count()
NOON = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


def an_event(
    payload: Mapping[str, object] | None = None,
    *,
    key: str | None = None,
    source: str = "default",
    received_at: datetime = NOON,
) -> Event:
    """A fresh event (new id); the same payload gives the same fingerprint."""
    return Event.accept(
        payload if payload is not None else {"action": "click", "n": next(_counter)},
        event_id=uuid7(),
        received_at=received_at,
        source=source,
        ignore=frozenset({"sent_at"}),
        key=key,
    )


def a_copy_of(event: Event) -> Event:
    """The same event as the client sent it again: new id, same identity and content."""
    return Event(
        event_id=uuid7(),
        fingerprint=event.fingerprint,
        content=event.content,
        received_at=event.received_at,
        source=event.source,
        payload=event.payload,
    )
