"""Events carry a time-ordered id, their identity and their canonical payload."""

from __future__ import annotations

from uuid import UUID

from dedup.domain.event import Event, uuid7
from dedup.domain.fingerprint import EventFingerprint, canonical_json
from hypothesis import given
from hypothesis import strategies as st

from tests.builders import NOON, an_event, an_event_id
from tests.strategies import objects


def test_event_ids_are_version_7_and_time_ordered() -> None:
    early = uuid7(unix_ms=1_700_000_000_000, random=b"\xff" * 10)
    late = uuid7(unix_ms=1_700_000_000_001, random=bytes(10))
    assert early.version == 7
    assert early.variant == "specified in RFC 4122"
    assert early < late
    assert UUID(str(early)) == early
    assert early.int >> 80 == 1_700_000_000_000


def test_an_id_is_a_pure_function_of_its_millisecond_and_random_bytes() -> None:
    random = bytes(range(10))
    assert uuid7(unix_ms=5, random=random) == uuid7(unix_ms=5, random=random)
    assert uuid7(unix_ms=5, random=random) != uuid7(unix_ms=5, random=bytes(10))


def test_the_payload_is_stored_in_canonical_form() -> None:
    event = an_event({"b": 2, "a": {"y": 1, "x": " spaced "}})
    assert event.payload == '{"a":{"x":" spaced ","y":1},"b":2}'
    assert event.received_at == NOON


def test_a_keyed_event_takes_its_identity_from_the_key_and_keeps_a_content_digest() -> None:
    one = an_event({"a": 1}, key="k")
    other = an_event({"a": 2}, key="k")
    assert one.fingerprint == other.fingerprint
    assert one.content != other.content


def test_an_unkeyed_event_is_identified_by_its_content() -> None:
    event = an_event({"a": 1})
    assert event.fingerprint == event.content


@given(objects, st.sets(st.text(max_size=8), max_size=3), st.booleans())
def test_the_content_digest_never_depends_on_the_ignored_fields(
    payload: dict[str, object], ignored: set[str], ignore_some_present: bool
) -> None:
    ignore = frozenset(ignored | (set(list(payload)[:1]) if ignore_some_present else set()))
    event = Event.accept(
        payload, event_id=an_event_id(), received_at=NOON, source="s", ignore=ignore, key=None
    )
    assert event.content == EventFingerprint.of(payload, ignore=ignore)
    assert event.payload == canonical_json(payload).decode()
