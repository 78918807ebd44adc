"""Small builders for domain objects in tests."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from uuid import UUID

from attrs import evolve
from dedup.domain.event import Event, EventId, precedence, uuid7
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


def a_losing_copy(event: Event) -> Event:
    """A copy that loses a race to the given event: an id of lower precedence (DESIGN.md §3.4).

    The two ids share their upper half, as two ids uuid-utils makes in one millisecond do:
    what tells them apart is the half a UUID's upper bits alone would miss. The loser's id
    is also the smaller, so a rule of "the smallest id wins" would pick it, and fail.
    """
    upper = event.event_id.int >> 64 << 64
    ids = (
        EventId(UUID(int=upper | 0b10 << 62 | int.from_bytes(os.urandom(8), "big") >> 2))
        for _ in itertools.count()
    )
    loser = next(
        i for i in ids if i < event.event_id and precedence(i) < precedence(event.event_id)
    )
    return evolve(a_copy_of(event), event_id=loser)
