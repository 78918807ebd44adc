"""The API's use case: ids, times, fingerprints, keys — and nothing queued on bad input."""

from __future__ import annotations

import asyncio

import pytest
from dedup.application.accept_events import AcceptEvents
from dedup.domain.errors import BackendUnavailableError, InvalidEventError

from tests.fakes import FakeQueue


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_each_accepted_event_is_queued_with_its_own_id(
    accept: AcceptEvents, queue: FakeQueue
) -> None:
    ids = run(accept.execute([{"a": 1}, {"a": 1}], source="default", batch=True))
    assert len(set(ids)) == 2
    assert [e.event_id for e in queue.queued] == ids
    assert queue.queued[0].fingerprint == queue.queued[1].fingerprint
    assert queue.queued[0].received_at.microsecond == 0
    assert queue.queued[0].received_at.tzinfo is not None


def test_ignored_fields_do_not_change_identity(accept: AcceptEvents, queue: FakeQueue) -> None:
    run(accept.execute([{"a": 1, "sent_at": "t1"}], source="default"))
    run(accept.execute([{"a": 1, "sent_at": "t2"}], source="default"))
    assert queue.queued[0].fingerprint == queue.queued[1].fingerprint
    assert '"sent_at":"t1"' in queue.queued[0].payload  # ignored for identity, still stored


def test_an_idempotency_key_header_is_the_identity(accept: AcceptEvents, queue: FakeQueue) -> None:
    run(accept.execute([{"a": 1}], source="default", key="k"))
    run(accept.execute([{"a": 2}], source="default", key="k"))
    assert queue.queued[0].fingerprint == queue.queued[1].fingerprint
    assert queue.queued[0].content != queue.queued[1].content


def test_a_batch_key_names_each_item_by_its_index(accept: AcceptEvents, queue: FakeQueue) -> None:
    run(accept.execute([{"a": 1}, {"a": 1}], source="default", key="k", batch=True))
    assert queue.queued[0].fingerprint != queue.queued[1].fingerprint
    run(accept.execute([{"a": 1}], source="default", key="k", batch=True))
    assert queue.queued[2].fingerprint == queue.queued[0].fingerprint


def test_the_id_field_in_the_body_is_the_identity(accept: AcceptEvents, queue: FakeQueue) -> None:
    run(accept.execute([{"message_id": "m1", "a": 1}], source="default"))
    run(accept.execute([{"message_id": "m1", "a": 2}], source="default"))
    run(accept.execute([{"message_id": 7}], source="default"))
    assert queue.queued[0].fingerprint == queue.queued[1].fingerprint
    assert queue.queued[2].fingerprint != queue.queued[0].fingerprint


def test_keys_are_scoped_by_source(accept: AcceptEvents, queue: FakeQueue) -> None:
    run(accept.execute([{"a": 1}], source="web", key="k"))
    run(accept.execute([{"a": 1}], source="ios", key="k"))
    assert queue.queued[0].fingerprint != queue.queued[1].fingerprint


@pytest.mark.parametrize("bad", [None, "", True, 1.5, [1], {"x": 1}])
def test_an_unusable_id_field_is_refused_and_nothing_is_queued(
    accept: AcceptEvents, queue: FakeQueue, bad: object
) -> None:
    with pytest.raises(InvalidEventError, match="item 1: field 'message_id'"):
        run(accept.execute([{"a": 1}, {"message_id": bad}], source="default", batch=True))
    assert queue.queued == []


def test_a_broker_that_is_down_is_reported_not_swallowed(
    accept: AcceptEvents, queue: FakeQueue
) -> None:
    queue.down = True
    with pytest.raises(BackendUnavailableError):
        run(accept.execute([{"a": 1}], source="default"))


def test_own_keys_name_each_item_and_none_falls_back_to_its_content(
    accept: AcceptEvents, queue: FakeQueue
) -> None:
    run(accept.execute([{"a": 1}, {"a": 1}], source="web", keys=["m-1", None]))
    run(accept.execute([{"a": 2}], source="web", keys=["m-1"]))
    keyed, by_content, again = queue.queued
    assert keyed.fingerprint == again.fingerprint
    assert by_content.fingerprint == by_content.content


def test_resent_fields_are_left_out_of_the_content_but_stored(
    accept: AcceptEvents, queue: FakeQueue
) -> None:
    for sent_at in ("t1", "t2"):
        run(accept.execute([{"a": 1, "sentAt": sent_at}], source="web", keys=[None],
                           resent_fields=frozenset({"sentAt"})))  # fmt: skip
    first, resent = queue.queued
    assert first.fingerprint == resent.fingerprint == first.content
    assert '"sentAt":"t2"' in resent.payload


def test_keys_must_match_the_payloads_one_for_one(accept: AcceptEvents, queue: FakeQueue) -> None:
    with pytest.raises(ValueError, match="one key per payload"):
        run(accept.execute([{"a": 1}], source="web", keys=[]))
    assert queue.queued == []
