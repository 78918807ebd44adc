"""Redis and the stored filter in front of ClickHouse: they save searches, never let a copy
through."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from attrs import define
from dedup.application.deduplicate_event import DeduplicateEvent
from dedup.application.refill_stored_filter import RefillStoredFilter
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event
from dedup.domain.fingerprint import EventFingerprint
from dedup.domain.outcome import Duplicate, Outcome

from tests.builders import a_copy_of, an_event
from tests.fakes import FakeEventRepository, FakeHashCache, FakeStoredFilter


def refill(seen: FakeStoredFilter, repo: FakeEventRepository, **kwargs: object) -> list[str]:
    use_case = RefillStoredFilter(
        refill=seen,
        history=repo,
        settle=timedelta(seconds=330),
        **kwargs,  # type: ignore[arg-type]
    )
    return [gap.name for gap in use_case.execute()]


def test_new_fingerprints_the_filter_rules_out_are_not_searched_in_clickhouse(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository
) -> None:
    events = [an_event() for _ in range(5)]
    outcome = deduplicate.execute(events)
    assert outcome.count(Outcome.STORED) == 5
    assert repo.looked_up == set()


def test_a_copy_of_an_event_redis_knows_stored_is_recorded_without_a_search(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository, cache: FakeHashCache
) -> None:
    original = an_event()
    deduplicate.execute([original])
    assert cache.stored == {original.fingerprint}  # pointed at once stored
    copy = a_copy_of(original)
    outcome = deduplicate.execute([copy])
    assert repo.looked_up == set()
    assert outcome.outcomes == {copy.event_id: Outcome.DUPLICATE}
    assert [d.original_event_id for d in repo.duplicates] == [original.event_id]


def test_a_redelivery_redis_knows_stored_is_not_searched_again(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository
) -> None:
    event = an_event()
    deduplicate.execute([event])
    outcome = deduplicate.execute([event])  # its batch had settled before the ack was lost
    assert outcome.outcomes == {event.event_id: Outcome.ALREADY_STORED}
    assert repo.looked_up == set()
    assert repo.searched_window == set()


def test_a_redelivery_whose_batch_died_before_settling_is_searched_in_full(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository, cache: FakeHashCache
) -> None:
    event = an_event()
    repo.crash_after_insert = True  # stored, then down before the check and the pointing
    with pytest.raises(BackendUnavailableError):
        deduplicate.execute([event])
    repo.down = False
    assert cache.stored == set()
    outcome = deduplicate.execute([event])
    assert outcome.outcomes == {event.event_id: Outcome.ALREADY_STORED}
    assert repo.looked_up == {event.fingerprint}
    assert repo.searched_window == {event.fingerprint}
    assert cache.stored == {event.fingerprint}


def test_a_copy_of_a_stored_event_is_searched_and_recorded(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository, cache: FakeHashCache
) -> None:
    original = an_event()
    deduplicate.execute([original])
    cache.flush()  # Redis forgot the claim (its TTL ran out); the filter still knows
    copy = a_copy_of(original)
    outcome = deduplicate.execute([copy])
    assert repo.looked_up == {original.fingerprint}
    assert outcome.outcomes == {copy.event_id: Outcome.DUPLICATE}
    assert repo.final() == [original]


def test_a_lost_filter_rules_nothing_out_so_a_copy_is_still_caught(
    deduplicate: DeduplicateEvent,
    repo: FakeEventRepository,
    cache: FakeHashCache,
    seen: FakeStoredFilter,
) -> None:
    original = an_event()
    deduplicate.execute([original])
    cache.flush()
    seen.lose()  # Redis restarted empty: claims and filter gone together
    copy, fresh = a_copy_of(original), an_event()
    outcome = deduplicate.execute([copy, fresh])
    assert repo.looked_up == {original.fingerprint, fresh.fingerprint}
    assert outcome.outcomes == {copy.event_id: Outcome.DUPLICATE, fresh.event_id: Outcome.STORED}
    assert {e.event_id for e in repo.final()} == {original.event_id, fresh.event_id}


@define
class FilterCheckingRepository(FakeEventRepository):
    """Notes, at each insert, which of the events the filter would still rule out."""

    seen: FakeStoredFilter | None = None
    ruled_out_at_insert: set[EventFingerprint] | None = None

    def save(self, *, events: Sequence[Event], duplicates: Sequence[Duplicate]) -> None:
        if events and self.seen is not None:
            self.ruled_out_at_insert = self.seen.unseen({e.fingerprint for e in events})
        super().save(events=events, duplicates=duplicates)


def test_the_filter_learns_an_event_before_it_is_stored() -> None:
    seen = FakeStoredFilter.complete()
    repo = FilterCheckingRepository(seen=seen)
    DeduplicateEvent(cache=FakeHashCache(), events=repo, seen=seen).execute([an_event()])
    assert repo.ruled_out_at_insert == set()


def test_a_redelivered_batch_after_a_lost_filter_is_stored_once(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository, seen: FakeStoredFilter
) -> None:
    events = [an_event() for _ in range(3)]
    deduplicate.execute(events)
    seen.lose()
    refill(seen, repo, sleep=lambda _s: None)
    outcome = deduplicate.execute(events)  # the broker delivered the batch again
    assert set(outcome.outcomes.values()) == {Outcome.ALREADY_STORED}
    assert repo.stored == events


def test_a_refill_brings_back_every_stored_fingerprint_and_answers_again(
    deduplicate: DeduplicateEvent,
    repo: FakeEventRepository,
    cache: FakeHashCache,
    seen: FakeStoredFilter,
) -> None:
    stored = [an_event() for _ in range(4)]
    deduplicate.execute(stored)
    seen.lose()
    cache.flush()

    assert refill(seen, repo, sleep=lambda _s: None) == ["fake"]

    copies, fresh = [a_copy_of(e) for e in stored], an_event()
    repo.looked_up.clear()
    outcome = deduplicate.execute([*copies, fresh])
    assert repo.looked_up == {e.fingerprint for e in stored}  # not the fresh one
    assert outcome.count(Outcome.DUPLICATE) == 4
    assert {e.event_id for e in repo.final()} == {e.event_id for e in [*stored, fresh]}


def test_a_filter_lost_during_its_refill_stays_unusable(
    repo: FakeEventRepository, seen: FakeStoredFilter
) -> None:
    seen.lose()
    repo.stored.append(an_event())
    assert refill(seen, repo, sleep=lambda _s: seen.lose()) == []
    assert seen.unseen({an_event().fingerprint}) == set()
    assert refill(seen, repo, sleep=lambda _s: None) == ["fake"]  # the next run finishes it


def test_the_refill_waits_for_inserts_in_flight_before_reading(
    repo: FakeEventRepository, seen: FakeStoredFilter
) -> None:
    seen.lose()
    late = an_event()
    # An insert whose filter bits were lost lands while the refill settles: it must be read.
    assert refill(seen, repo, sleep=lambda _s: repo.stored.append(late)) == ["fake"]
    assert seen.unseen({late.fingerprint}) == set()


def test_a_complete_filter_is_left_alone(repo: FakeEventRepository, seen: FakeStoredFilter) -> None:
    waits: list[float] = []
    assert refill(seen, repo, sleep=waits.append) == []
    assert waits == []
    assert seen.refills == 0
