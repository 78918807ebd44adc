"""Events carry a time-ordered id, their identity and their canonical payload."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

from dedup.domain.event import Event, uuid7
from dedup.domain.fingerprint import EventFingerprint, canonical_json
from hypothesis import given
from hypothesis import strategies as st

from tests.builders import NOON, an_event
from tests.strategies import objects


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


def test_ids_are_unique_across_threads() -> None:
    def draw(_: int) -> list[UUID]:
        return [uuid7() for _ in range(2000)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = [event_id for chunk in pool.map(draw, range(8)) for event_id in chunk]
    assert len(set(ids)) == len(ids) == 16_000


def test_a_forked_child_never_repeats_the_parents_random_bits() -> None:
    uuid7()  # the parent's pool holds unused bytes now, which the child inherits
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, uuid7(unix_ms=0).bytes)
        os._exit(0)
    os.close(write)
    child = UUID(bytes=os.read(read, 16))
    os.close(read)
    os.waitpid(pid, 0)
    assert child != uuid7(unix_ms=0)


@given(objects, st.sets(st.text(max_size=8), max_size=3), st.booleans())
def test_the_content_digest_never_depends_on_the_ignored_fields(
    payload: dict[str, object], ignored: set[str], ignore_some_present: bool
) -> None:
    ignore = frozenset(ignored | (set(list(payload)[:1]) if ignore_some_present else set()))
    event = Event.accept(
        payload, event_id=uuid7(), received_at=NOON, source="s", ignore=ignore, key=None
    )
    assert event.content == EventFingerprint.of(payload, ignore=ignore)
    assert event.payload == canonical_json(payload).decode()
