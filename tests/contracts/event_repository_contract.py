"""The rules every EventRepository follows, whatever stores the events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import cast
from uuid import uuid4

import pytest
from dedup.application.ports import EventRepository, FingerprintHistory
from dedup.domain.event import Event, EventId
from dedup.domain.fingerprint import EventFingerprint
from dedup.domain.outcome import Duplicate, DuplicateKind
from dedup.domain.standard_fields import StandardFields

from tests.builders import a_losing_copy, an_event_id

WINDOW_SECONDS = 30 * 24 * 3600
HOSTILE = "'); DROP TABLE events; -- \\ \" \n\t é 😀 \x00"


def an_event(
    *,
    received_at: datetime,
    payload: dict[str, object] | None = None,
    event_id: EventId | None = None,
    source: str = "contract",
    key: str | None = None,
) -> Event:
    return Event.accept(
        payload if payload is not None else {"n": uuid4().hex},
        event_id=event_id if event_id is not None else an_event_id(),
        received_at=received_at,
        source=source,
        ignore=frozenset(),
        key=key,
    )


def a_duplicate_of(original: Event, *, kind: DuplicateKind = DuplicateKind.CONTENT) -> Duplicate:
    return Duplicate(
        event_id=an_event_id(),
        fingerprint=original.fingerprint,
        original_event_id=original.event_id,
        received_at=original.received_at + timedelta(seconds=3),
        kind=kind,
    )


SIGNED_UP = {
    "type": "track",
    "event": "Signed Up",
    "userId": "u-1",
    "anonymousId": "a-1",
    "messageId": "m-1",
    "timestamp": "2026-11-29T13:14:15.678+01:00",
    "properties": {"plan": "pro", "event": "nested, never read"},
    "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
}
# Payloads and the standard fields each must be stored with.
STANDARD_CASES = {
    "segment-track": (
        SIGNED_UP,
        StandardFields(
            type="track",
            event="Signed Up",
            user_id="u-1",
            anonymous_id="a-1",
            timestamp=datetime(2026, 11, 29, 12, 14, 15, tzinfo=UTC),
        ),
    ),
    "page": (
        {"type": "page", "name": "Pricing", "anonymousId": "a-2", "properties": {"path": "/p"}},
        StandardFields(type="page", event="Pricing", anonymous_id="a-2"),
    ),
    "native": ({"action": "click", "user": "u-3"}, StandardFields()),
    "numeric-user-id": (
        {"type": "identify", "userId": 42, "traits": {"plan": "pro"}},
        StandardFields(type="identify", user_id="42"),
    ),
    "bad-timestamp": (
        {"type": "track", "event": "Paid", "userId": "u-4", "timestamp": "last tuesday"},
        StandardFields(type="track", event="Paid", user_id="u-4"),
    ),
}


class EventRepositoryContract:
    """Concrete modules supply `repo` (built with WINDOW_SECONDS and a clock returning `now`),
    `stored_events` and `stored_duplicates` (exact reads of what is stored, FINAL)."""

    @pytest.fixture
    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    def test_no_fingerprint_has_an_owner_in_an_empty_store(
        self, repo: EventRepository, now: datetime
    ) -> None:
        assert repo.owners([]) == {}
        assert repo.owners([an_event(received_at=now).fingerprint]) == {}

    def test_a_saved_event_owns_its_fingerprint(self, repo: EventRepository, now: datetime) -> None:
        event, other = an_event(received_at=now), an_event(received_at=now)
        repo.save(events=[event], duplicates=[])
        assert repo.owners([event.fingerprint, other.fingerprint]) == {
            event.fingerprint: event.holder
        }

    def test_owners_outside_the_dedup_window_are_ignored(
        self, repo: EventRepository, now: datetime
    ) -> None:
        window = timedelta(seconds=WINDOW_SECONDS)
        old = an_event(received_at=now - window - timedelta(hours=1))
        recent = an_event(received_at=now - window + timedelta(hours=1))
        repo.save(events=[old, recent], duplicates=[])
        assert repo.owners([old.fingerprint, recent.fingerprint]) == {
            recent.fingerprint: recent.holder
        }

    def test_the_event_of_highest_precedence_owns_a_fingerprint_stored_twice(
        self, repo: EventRepository, now: datetime
    ) -> None:
        # One millisecond and one upper half, as uuid-utils makes two ids in a row, and the
        # loser the smaller id: only the rule the merge follows names `kept`.
        kept = an_event(received_at=now, payload={"race": uuid4().hex})
        beaten = a_losing_copy(kept)
        repo.save(events=[kept], duplicates=[])
        repo.save(events=[beaten], duplicates=[])
        assert repo.owners([kept.fingerprint]) == {kept.fingerprint: kept.holder}

    def test_recorded_names_only_the_duplicates_already_saved(
        self, repo: EventRepository, now: datetime
    ) -> None:
        original = an_event(received_at=now)
        saved, unsaved = a_duplicate_of(original), a_duplicate_of(original)
        repo.save(events=[original], duplicates=[saved])
        assert repo.recorded([]) == set()
        assert repo.recorded([saved, unsaved]) == {saved.event_id}

    def test_a_saved_event_round_trips_exactly(
        self,
        repo: EventRepository,
        now: datetime,
        stored_events: Callable[[], list[Event]],
    ) -> None:
        event = an_event(
            received_at=now,
            payload={"text": HOSTILE, "nested": {"b": [1, 2.5, None, True]}, "a": "ü"},
            source="web'\\\"src",
            key=f"key-{uuid4().hex}",
        )
        assert event.fingerprint != event.content
        repo.save(events=[event], duplicates=[])
        [stored] = stored_events()
        assert stored == event
        assert stored.received_at.tzinfo is not None
        assert stored.received_at.utcoffset() == timedelta(0)

    @pytest.mark.parametrize("case", sorted(STANDARD_CASES))
    def test_an_event_is_stored_with_the_standard_fields_of_its_payload(
        self,
        repo: EventRepository,
        now: datetime,
        stored_events: Callable[[], list[Event]],
        case: str,
    ) -> None:
        payload, expected = STANDARD_CASES[case]
        event = an_event(received_at=now, payload=payload)
        repo.save(events=[event], duplicates=[])
        [stored] = stored_events()
        assert stored.standard == expected
        assert stored == event

    def test_binary_fingerprints_are_stored_byte_exact(
        self,
        repo: EventRepository,
        now: datetime,
        stored_events: Callable[[], list[Event]],
    ) -> None:
        # Trailing zero bytes, quotes, backslashes: FixedString must neither trim nor escape.
        digest = b"\xff'\\\n\"" + uuid4().bytes[:6] + b"\x00" * 5
        event = an_event(received_at=now)
        event = Event(
            event_id=event.event_id,
            fingerprint=EventFingerprint(digest),
            content=EventFingerprint(b"\x00" * 16),
            received_at=event.received_at,
            source=event.source,
            payload=event.payload,
        )
        repo.save(events=[event], duplicates=[])
        assert stored_events() == [event]
        assert repo.owners([event.fingerprint]) == {event.fingerprint: event.holder}

    def test_duplicates_of_either_kind_round_trip(
        self,
        repo: EventRepository,
        now: datetime,
        stored_duplicates: Callable[[], list[Duplicate]],
    ) -> None:
        original = an_event(received_at=now)
        content = a_duplicate_of(original, kind=DuplicateKind.CONTENT)
        conflict = a_duplicate_of(original, kind=DuplicateKind.KEY_CONFLICT)
        repo.save(events=[original], duplicates=[content, conflict])
        assert sorted(stored_duplicates(), key=lambda d: d.event_id) == sorted(
            [content, conflict], key=lambda d: d.event_id
        )

    def test_a_duplicate_saved_twice_is_one_row(
        self,
        repo: EventRepository,
        now: datetime,
        stored_duplicates: Callable[[], list[Duplicate]],
    ) -> None:
        original = an_event(received_at=now)
        duplicate = a_duplicate_of(original)
        repo.save(events=[original], duplicates=[duplicate])
        repo.save(events=[], duplicates=[duplicate])  # a redelivered batch writes it again
        assert stored_duplicates() == [duplicate]
        assert repo.recorded([duplicate]) == {duplicate.event_id}

    def test_received_since_reads_back_every_fingerprint_from_that_moment(
        self, repo: EventRepository, now: datetime
    ) -> None:
        # Keys chosen at the edges of the history pages (by leading byte) and between them.
        keys = [
            bytes([lead]) + bytes([fill]) * 15
            for lead in (0, 1, 127, 128, 254, 255)
            for fill in (0, 255)
        ]
        recent = [
            Event(
                event_id=an_event_id(),
                fingerprint=EventFingerprint(key),
                content=EventFingerprint(key),
                received_at=now,
                source="contract",
                payload="{}",
            )
            for key in keys
        ]
        older = an_event(received_at=now - timedelta(hours=2))
        repo.save(events=[*recent, older], duplicates=[])
        history = cast(FingerprintHistory, repo)

        since = set(history.received_since(now - timedelta(hours=1)))

        assert since >= {event.fingerprint for event in recent}
        assert older.fingerprint not in since
        assert older.fingerprint in set(history.received_since(now - timedelta(hours=3)))
