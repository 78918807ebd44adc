"""Small builders for domain objects in tests."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from datetime import UTC, datetime

from dedup.domain.event import Event, EventId, uuid7
from dedup.infrastructure.ids import new_event_id

_counter = itertools.count()
NOON = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


def an_event_id(*, unix_ms: int | None = None) -> EventId:
    """A fresh id; at a given millisecond when asked (to order two events)."""
    if unix_ms is None:
        return new_event_id()
    return uuid7(unix_ms=unix_ms, random=os.urandom(10))


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
        event_id=an_event_id(),
        received_at=received_at,
        source=source,
        ignore=frozenset({"sent_at"}),
        key=key,
    )


def a_copy_of(event: Event) -> Event:
    """The same event as the client sent it again: new id, same identity and content."""
    return Event(
        event_id=an_event_id(),
        fingerprint=event.fingerprint,
        content=event.content,
        received_at=event.received_at,
        source=event.source,
        payload=event.payload,
    )
