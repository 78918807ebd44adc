"""Rows <-> domain values, one explicit function per direction and table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dedup.domain.event import Event, EventId, Holder, precedence
from dedup.domain.fingerprint import EventFingerprint
from dedup.domain.outcome import Duplicate, DuplicateKind
from dedup.domain.standard_fields import StandardFields

Row = tuple[Any, ...]


def utc(value: datetime) -> datetime:
    """A tz-aware UTC datetime; naive values coming out of ClickHouse are UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def row_from_event(event: Event) -> Row:
    """In the column order of tables.EVENTS."""
    return (
        event.event_id,
        event.fingerprint.digest,
        event.content.digest,
        utc(event.received_at),
        event.source,
        event.payload,
        precedence(event.event_id),  # the version: the merge keeps the highest
        event.standard.type,
        event.standard.event,
        event.standard.user_id,
        event.standard.anonymous_id,
        None if event.standard.timestamp is None else utc(event.standard.timestamp),
    )


def event_from_row(row: Row) -> Event:
    (event_id, fingerprint, content, received_at, source, payload, _version) = row[:7]
    kind, event, user_id, anonymous_id, timestamp = row[7:]
    return Event(
        event_id=EventId(event_id),
        fingerprint=EventFingerprint(fingerprint),
        content=EventFingerprint(content),
        received_at=utc(received_at),
        source=source,
        payload=payload,
        standard=StandardFields(
            type=kind,
            event=event,
            user_id=user_id,
            anonymous_id=anonymous_id,
            timestamp=None if timestamp is None else utc(timestamp),
        ),
    )


def holder_from_row(row: Row) -> tuple[EventFingerprint, Holder]:
    """A row of (fingerprint, event_id, content) from event_fingerprints."""
    fingerprint, event_id, content = row
    return EventFingerprint(fingerprint), Holder(
        event_id=EventId(event_id), content=EventFingerprint(content)
    )


def row_from_duplicate(duplicate: Duplicate) -> Row:
    """In the column order of tables.EVENT_DUPLICATES."""
    return (
        duplicate.event_id,
        duplicate.fingerprint.digest,
        duplicate.original_event_id,
        utc(duplicate.received_at),
        duplicate.kind.value,
    )


def duplicate_from_row(row: Row) -> Duplicate:
    event_id, fingerprint, original_event_id, received_at, kind = row
    return Duplicate(
        event_id=EventId(event_id),
        fingerprint=EventFingerprint(fingerprint),
        original_event_id=EventId(original_event_id),
        received_at=utc(received_at),
        kind=DuplicateKind(kind),
    )
