"""The wire format between the API and the workers: a batch of events as JSON primitives.

One event is one row of eleven strings, in this order:
event_id (canonical UUID), fingerprint (32 lowercase hex), content (32 lowercase hex),
received_at (ISO 8601, as `datetime.isoformat()` writes it), source, payload (canonical JSON),
then its standard fields: type, event, user_id, anonymous_id, timestamp (as received_at, or ""
when unknown). The API has the payload parsed already, so it reads them; the worker would have
to parse the JSON again. A row of the first six only (an API older than the standard fields)
is still read: its fields come from the payload.
Decoding is strict: every field must be in exactly the form encoding writes, so a message that
was not written by `events_to_message` is refused rather than half understood.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from dedup.domain.event import Event, EventId
from dedup.domain.fingerprint import DIGEST_SIZE, EventFingerprint
from dedup.domain.standard_fields import UNKNOWN, StandardFields

LEGACY_FIELDS = ("event_id", "fingerprint", "content", "received_at", "source", "payload")
FIELDS = (*LEGACY_FIELDS, "type", "event", "user_id", "anonymous_id", "timestamp")
_HEX_DIGITS = frozenset("0123456789abcdef")


def events_to_message(events: Sequence[Event]) -> list[list[str]]:
    """The events as rows of strings, JSON-serialisable as they are."""
    return [
        [
            str(event.event_id),
            event.fingerprint.hex,
            event.content.hex,
            event.received_at.isoformat(),
            event.source,
            event.payload,
            event.standard.type,
            event.standard.event,
            event.standard.user_id,
            event.standard.anonymous_id,
            "" if event.standard.timestamp is None else event.standard.timestamp.isoformat(),
        ]
        for event in events
    ]


def events_from_message(obj: object) -> list[Event]:
    """The events of a message; ValueError names the first row or field that is malformed."""
    if not isinstance(obj, list):
        raise ValueError(f"a message is a list of events, got {type(obj).__name__}")
    return [_event_from_row(row, index=index) for index, row in enumerate(obj)]


def _event_from_row(row: object, *, index: int) -> Event:
    if not isinstance(row, list) or len(row) not in (len(FIELDS), len(LEGACY_FIELDS)):
        raise ValueError(f"event {index}: expected a list of {len(FIELDS)} strings")
    for name, value in zip(FIELDS, row, strict=False):
        if not isinstance(value, str):
            raise ValueError(f"event {index}: {name} must be a string")
    event_id, fingerprint, content, received_at, source, payload = row[: len(LEGACY_FIELDS)]
    standard = (
        StandardFields.of_json(payload)
        if len(row) == len(LEGACY_FIELDS)
        else _standard(row[len(LEGACY_FIELDS) :], index=index)
    )
    return Event(
        event_id=_event_id(event_id, index=index),
        fingerprint=_fingerprint(fingerprint, name="fingerprint", index=index),
        content=_fingerprint(content, name="content", index=index),
        received_at=_timestamp(received_at, name="received_at", index=index),
        source=source,
        payload=payload,
        standard=standard,
    )


def _standard(fields: list[str], *, index: int) -> StandardFields:
    kind, event, user_id, anonymous_id, timestamp = fields
    if not (kind or event or user_id or anonymous_id or timestamp):
        return UNKNOWN  # a native event, most often: one shared value, nothing to build
    return StandardFields(
        type=kind,
        event=event,
        user_id=user_id,
        anonymous_id=anonymous_id,
        timestamp=_timestamp(timestamp, name="timestamp", index=index) if timestamp else None,
    )


def _event_id(text: str, *, index: int) -> EventId:
    try:
        value = UUID(text)
    except ValueError:
        value = None
    # UUID() also takes braces, urn: prefixes and upper case; only the canonical form is ours.
    if value is None or str(value) != text:
        raise ValueError(f"event {index}: event_id {text!r} is not a canonical UUID")
    return EventId(value)


def _fingerprint(text: str, *, name: str, index: int) -> EventFingerprint:
    # bytes.fromhex() skips whitespace and takes upper case; check the exact form first.
    if len(text) != 2 * DIGEST_SIZE or not _HEX_DIGITS.issuperset(text):
        raise ValueError(f"event {index}: {name} must be {2 * DIGEST_SIZE} lowercase hex digits")
    return EventFingerprint.from_hex(text)


def _timestamp(text: str, *, name: str, index: int) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.isoformat() != text:
        raise ValueError(f"event {index}: {name} {text!r} is not an ISO 8601 timestamp")
    return value
