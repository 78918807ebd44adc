"""Every branch of the claim protocol (DESIGN.md §3) against the in-memory fakes."""

from __future__ import annotations

import pytest
from dedup.application.deduplicate_event import DeduplicateEvent
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.outcome import DuplicateKind, Outcome

from tests.builders import a_copy_of, an_event
from tests.fakes import FakeEventRepository, FakeHashCache


def test_a_new_event_is_stored_and_owns_its_fingerprint(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository, cache: FakeHashCache
) -> None:
    event = an_event()
    outcome = deduplicate.execute([event])
    assert repo.stored == [event]
    assert repo.duplicates == []
    assert outcome.outcomes == {event.event_id: Outcome.STORED}
    assert cache.claims[event.fingerprint] == event.holder


def test_a_redelivered_event_is_not_mistaken_for_its_own_duplicate(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository
) -> None:
    event = an_event()
    deduplicate.execute([event])
    outcome = deduplicate.execute([event])  # the broker delivered it again
    assert repo.stored == [event]
    assert repo.duplicates == []
    assert outcome.outcomes == {event.event_id: Outcome.ALREADY_STORED}


def test_a_copy_in_a_later_batch_is_recorded_against_the_stored_event(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository
) -> None:
    original = an_event()
    copy = a_copy_of(original)
    deduplicate.execute([original])
    outcome = deduplicate.execute([copy])
    assert repo.stored == [original]
    assert [(d.event_id, d.original_event_id, d.kind) for d in repo.duplicates] == [
        (copy.event_id, original.event_id, DuplicateKind.CONTENT)
    ]
    assert outcome.outcomes == {copy.event_id: Outcome.DUPLICATE}


def test_copies_within_one_batch_store_the_first_and_record_the_rest(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository
) -> None:
    original = an_event()
    copies = [a_copy_of(original) for _ in range(3)]
    outcome = deduplicate.execute([original, *copies])
    assert repo.stored == [original]
    assert {d.event_id for d in repo.duplicates} == {c.event_id for c in copies}
    assert {d.original_event_id for d in repo.duplicates} == {original.event_id}
    assert outcome.count(Outcome.STORED) == 1
    assert outcome.count(Outcome.DUPLICATE) == 3


def test_the_same_message_twice_in_one_batch_counts_once(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository
) -> None:
    event = an_event()
    deduplicate.execute([event, event])
    assert repo.stored == [event]
    assert repo.duplicates == []


def test_a_copy_held_in_flight_by_another_worker_is_a_duplicate_of_that_holder(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository, cache: FakeHashCache
) -> None:
    in_flight = an_event()
    cache.claim({in_flight.fingerprint: in_flight.holder})  # another worker claimed, not yet stored
    copy = a_copy_of(in_flight)
    deduplicate.execute([copy])
    assert repo.stored == []
    assert [(d.event_id, d.original_event_id) for d in repo.duplicates] == [
        (copy.event_id, in_flight.event_id)
    ]


def test_a_flushed_cache_still_finds_the_stored_owner_and_repoints_the_key(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository, cache: FakeHashCache
) -> None:
    original = an_event()
    deduplicate.execute([original])
    cache.flush()  # Redis restarted empty
    copy = a_copy_of(original)
    deduplicate.execute([copy])
    assert repo.stored == [original]
    assert [d.original_event_id for d in repo.duplicates] == [original.event_id]
    assert cache.claims[original.fingerprint] == original.holder


def test_when_the_cache_disagrees_with_clickhouse_clickhouse_wins(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository, cache: FakeHashCache
) -> None:
    original = an_event()
    deduplicate.execute([original])
    stray = a_copy_of(original)
    cache.flush()  # Redis lost the claim, and a claim that never became a stored event took it
    cache.claim({original.fingerprint: stray.holder})
    later = a_copy_of(original)
    deduplicate.execute([later])
    assert repo.stored == [original]
    assert [d.original_event_id for d in repo.duplicates] == [original.event_id]
    assert cache.claims[original.fingerprint] == original.holder


def test_a_redelivery_after_the_cache_lost_its_claim_is_still_recognised(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository, cache: FakeHashCache
) -> None:
    event = an_event()
    deduplicate.execute([event])
    cache.flush()
    outcome = deduplicate.execute([event])
    assert repo.stored == [event]
    assert outcome.outcomes == {event.event_id: Outcome.ALREADY_STORED}


def test_the_same_idempotency_key_with_other_content_is_a_key_conflict(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository
) -> None:
    first = an_event({"amount": 10}, key="order-1")
    same = an_event({"amount": 10}, key="order-1")
    conflicting = an_event({"amount": 99}, key="order-1")
    deduplicate.execute([first])
    deduplicate.execute([same, conflicting])
    assert repo.stored == [first]
    kinds = {d.event_id: d.kind for d in repo.duplicates}
    assert kinds == {
        same.event_id: DuplicateKind.CONTENT,
        conflicting.event_id: DuplicateKind.KEY_CONFLICT,
    }


def test_a_key_conflict_within_one_batch_is_recorded_against_the_first(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository
) -> None:
    first = an_event({"amount": 10}, key="order-2")
    conflicting = an_event({"amount": 11}, key="order-2")
    deduplicate.execute([first, conflicting])
    assert repo.stored == [first]
    assert [(d.original_event_id, d.kind) for d in repo.duplicates] == [
        (first.event_id, DuplicateKind.KEY_CONFLICT)
    ]


def test_a_redelivered_batch_records_each_duplicate_once(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository
) -> None:
    original = an_event()
    copy = a_copy_of(original)
    batch = [original, copy]
    deduplicate.execute(batch)
    outcome = deduplicate.execute(batch)  # crash after insert, before ack
    assert repo.stored == [original]
    assert [d.event_id for d in repo.duplicates] == [copy.event_id]
    assert outcome.outcomes[copy.event_id] is Outcome.ALREADY_RECORDED


def test_a_redelivered_batch_in_another_order_keeps_the_same_owner(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository
) -> None:
    original = an_event()
    copy = a_copy_of(original)
    deduplicate.execute([original, copy])
    deduplicate.execute([copy, original])
    assert repo.stored == [original]
    assert [(d.event_id, d.original_event_id) for d in repo.duplicates] == [
        (copy.event_id, original.event_id)
    ]


def test_a_claim_survives_a_failed_insert_and_the_retry_stores_the_event(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository, cache: FakeHashCache
) -> None:
    event = an_event()
    repo.down = True
    with pytest.raises(BackendUnavailableError):
        deduplicate.execute([event])
    assert cache.claims[event.fingerprint] == event.holder  # never deleted on failure
    repo.down = False
    outcome = deduplicate.execute([event])
    assert repo.stored == [event]
    assert outcome.outcomes == {event.event_id: Outcome.STORED}


def test_a_cache_that_is_down_is_no_reason_to_retry(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository, cache: FakeHashCache
) -> None:
    cache.down = True
    event = an_event()
    outcome = deduplicate.execute([event])
    assert repo.stored == [event]
    assert outcome.degraded


def test_an_empty_batch_touches_nothing(
    deduplicate: DeduplicateEvent, cache: FakeHashCache
) -> None:
    cache.down = True
    assert deduplicate.execute([]).outcomes == {}


def test_the_accounting_invariant_holds_for_a_mixed_batch(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository
) -> None:
    originals = [an_event() for _ in range(5)]
    sent = [*originals, *(a_copy_of(e) for e in originals), *(a_copy_of(e) for e in originals[:2])]
    deduplicate.execute(sent[:7])
    deduplicate.execute(sent[4:])  # overlapping redelivery
    stored_ids = {e.event_id for e in repo.stored}
    dup_ids = [d.event_id for d in repo.duplicates]
    assert len(repo.stored) == len(stored_ids) == 5
    assert len(dup_ids) == len(set(dup_ids)) == 7
    assert stored_ids | set(dup_ids) == {e.event_id for e in sent}
    assert {d.original_event_id for d in repo.duplicates} <= stored_ids
