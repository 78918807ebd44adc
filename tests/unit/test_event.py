"""Events carry a time-ordered id, their identity and their canonical payload."""

from __future__ import annotations

from uuid import UUID

from domain.event import uuid7
from tests.builders import NOON, an_event


def test_event_ids_are_version_7_and_time_ordered() -> None:
    early = uuid7(unix_ms=1_700_000_000_000)
    late = uuid7(unix_ms=1_700_000_000_001)
    assert early.version == 7
    assert early.variant == "specified in RFC 4122"
    assert early < late
    assert UUID(str(early)) == early


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
