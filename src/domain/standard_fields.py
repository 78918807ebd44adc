"""The tracking spec's standard fields of an event, read from the top level of its payload."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

from attrs import frozen

# Messages whose `name` is what `event` is to a track (Segment's page and screen calls).
_NAMED = frozenset({"page", "screen"})
# Whole seconds since 1970 in 32 bits (ClickHouse DateTime): a client clock outside is wrong.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2106, 2, 7, 6, 28, 15, tzinfo=UTC)
_EXACT_FLOAT = 2**53
_READ = frozenset({"type", "event", "name", "userId", "anonymousId", "timestamp"})


def field_text(value: object) -> str:
    """A string as it is, a number or a boolean as JSON writes it; anything else is unknown ("")."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # 42.0 is the 42 a JavaScript client sent: JSON has one kind of number.
        return str(int(value)) if value.is_integer() and abs(value) < _EXACT_FLOAT else repr(value)
    return ""


def moment_of(value: object) -> datetime | None:
    """An ISO 8601 text as a UTC moment of whole seconds (no offset: UTC); else None (unknown)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    moment = moment.replace(microsecond=0)
    return moment if EARLIEST <= moment <= LATEST else None


@frozen
class StandardFields:
    """What people query without parsing JSON; "" (text) or None (timestamp) when unknown."""

    type: str = ""
    event: str = ""
    user_id: str = ""
    anonymous_id: str = ""
    timestamp: datetime | None = None

    @classmethod
    def of(cls, payload: Mapping[str, object]) -> StandardFields:
        """The fields of a payload; never refuses one: what is missing or malformed is unknown."""
        if payload.keys().isdisjoint(_READ):  # a native event, most often: nothing to convert
            return UNKNOWN
        get = payload.get
        kind = field_text(get("type"))
        name = field_text(get("name")) if kind in _NAMED else ""
        return cls(
            type=kind,
            event=name or field_text(get("event")),
            user_id=field_text(get("userId")),
            anonymous_id=field_text(get("anonymousId")),
            timestamp=moment_of(get("timestamp")),
        )

    @classmethod
    def of_json(cls, payload: str) -> StandardFields:
        """The fields of a stored payload (JSON text); one that is not an object has none."""
        try:
            value = json.loads(payload)
        except ValueError:
            return cls()
        return cls.of(value) if isinstance(value, dict) else cls()


UNKNOWN = StandardFields()
