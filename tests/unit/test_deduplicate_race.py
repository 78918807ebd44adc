"""The race DESIGN.md §3 step 4 names, settled: a claim lost while two copies are in flight."""

from __future__ import annotations

from collections.abc import Collection

import pytest
from dedup.application.deduplicate_event import DeduplicateEvent
from dedup.application.ports import Contender, WriteMark
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event
from dedup.domain.fingerprint import EventFingerprint
from dedup.domain.outcome import DuplicateKind, Outcome

from tests.accounting import Ledger, assert_accounting_invariant
from tests.builders import a_copy_of, a_losing_copy, an_event
from tests.fakes import FakeEventRepository, FakeHashCache, FakeStoredFilter


def race(
    deduplicate: DeduplicateEvent,
    cache: FakeHashCache,
    repo: FakeEventRepository,
    *,
    first: list[Event],
    then: list[Event],
) -> None:
    """`first` is stored; Redis loses its claims; `then` was looked up before `first` landed."""
    deduplicate.execute(first)
    cache.flush()
    repo.unseen = {event.event_id for event in first}
    deduplicate.execute(then)
    repo.unseen = set()


@pytest.fixture
def winner() -> Event:
    return an_event()


@pytest.fixture
def loser(winner: Event) -> Event:
    return a_losing_copy(winner)


@pytest.mark.parametrize("loser_inserts_last", [True, False], ids=["loser-last", "winner-last"])
def test_whichever_inserts_last_the_winner_stays_and_the_other_is_its_duplicate(
    *,
    deduplicate: DeduplicateEvent,
    cache: FakeHashCache,
    repo: FakeEventRepository,
    winner: Event,
    loser: Event,
    loser_inserts_last: bool,
) -> None:
    first, then = (winner, loser) if loser_inserts_last else (loser, winner)
    race(deduplicate, cache, repo, first=[first], then=[then])

    assert repo.final() == [winner]
    assert [(d.event_id, d.original_event_id) for d in repo.duplicates] == [
        (loser.event_id, winner.event_id)
    ]
    assert cache.claims[winner.fingerprint] == winner.holder
    assert_accounting_invariant([winner.event_id, loser.event_id], Ledger.from_fake(repo))


def test_the_losing_batch_is_told_its_event_became_a_duplicate(
    deduplicate: DeduplicateEvent,
    cache: FakeHashCache,
    repo: FakeEventRepository,
    winner: Event,
    loser: Event,
) -> None:
    deduplicate.execute([winner])
    cache.flush()
    repo.unseen = {winner.event_id}

    outcome = deduplicate.execute([loser])

    assert outcome.outcomes == {loser.event_id: Outcome.DUPLICATE}
    assert [d.event_id for d in outcome.duplicates] == [loser.event_id]


def test_a_batch_that_died_between_its_insert_and_the_check_settles_the_race_on_redelivery(
    deduplicate: DeduplicateEvent,
    cache: FakeHashCache,
    repo: FakeEventRepository,
    winner: Event,
    loser: Event,
) -> None:
    deduplicate.execute([loser])  # its check ran before the winner landed: nothing to settle
    cache.flush()
    repo.unseen = {loser.event_id}
    repo.crash_after_insert = True
    with pytest.raises(BackendUnavailableError):
        deduplicate.execute([winner])
    assert repo.duplicates == []  # both stored, nobody settled it yet
    repo.down, repo.unseen = False, set()

    outcome = deduplicate.execute([winner])  # the broker redelivers the unacked message

    assert outcome.outcomes == {winner.event_id: Outcome.ALREADY_STORED}
    assert [(d.event_id, d.original_event_id) for d in repo.duplicates] == [
        (loser.event_id, winner.event_id)
    ]
    assert_accounting_invariant([winner.event_id, loser.event_id], Ledger.from_fake(repo))


def test_a_redelivered_loser_is_neither_stored_nor_recorded_again(
    deduplicate: DeduplicateEvent,
    cache: FakeHashCache,
    repo: FakeEventRepository,
    winner: Event,
    loser: Event,
) -> None:
    race(deduplicate, cache, repo, first=[winner], then=[loser])
    cache.flush()

    outcome = deduplicate.execute([loser])

    assert outcome.outcomes == {loser.event_id: Outcome.ALREADY_RECORDED}
    assert len(repo.stored) == 2  # the raw table; the merge folds the loser away
    assert len(repo.duplicates) == 1


def test_copies_in_the_losing_batch_are_recorded_against_the_winner_not_the_loser(
    deduplicate: DeduplicateEvent,
    cache: FakeHashCache,
    repo: FakeEventRepository,
    winner: Event,
    loser: Event,
) -> None:
    copy = a_copy_of(loser)

    race(deduplicate, cache, repo, first=[winner], then=[loser, copy])

    assert {d.event_id: d.original_event_id for d in repo.duplicates} == {
        loser.event_id: winner.event_id,
        copy.event_id: winner.event_id,
    }


def test_a_conflicting_loser_is_recorded_as_a_key_conflict(
    deduplicate: DeduplicateEvent, cache: FakeHashCache, repo: FakeEventRepository
) -> None:
    winner = an_event({"amount": 1}, key="order-race")
    conflicting = an_event({"amount": 2}, key="order-race")
    loser = Event(
        event_id=a_losing_copy(winner).event_id,
        fingerprint=conflicting.fingerprint,
        content=conflicting.content,
        received_at=conflicting.received_at,
        source=conflicting.source,
        payload=conflicting.payload,
    )

    race(deduplicate, cache, repo, first=[winner], then=[loser])

    assert [(d.event_id, d.kind) for d in repo.duplicates] == [
        (loser.event_id, DuplicateKind.KEY_CONFLICT)
    ]


def test_a_copy_recorded_against_the_loser_before_the_race_was_settled_resolves_by_its_chain(
    deduplicate: DeduplicateEvent,
    cache: FakeHashCache,
    repo: FakeEventRepository,
    winner: Event,
    loser: Event,
) -> None:
    early_copy = a_copy_of(loser)
    deduplicate.execute([winner])
    cache.flush()  # the winner's claim is lost ...
    cache.claim({loser.fingerprint: loser.holder})  # ... the loser claims, not stored yet
    repo.unseen = {winner.event_id}  # and neither looks the winner up in time
    deduplicate.execute([early_copy])  # a copy arrives meanwhile: recorded against the loser
    deduplicate.execute([loser])

    originals = {d.event_id: d.original_event_id for d in repo.duplicates}
    assert originals == {early_copy.event_id: loser.event_id, loser.event_id: winner.event_id}
    assert_accounting_invariant(
        [winner.event_id, loser.event_id, early_copy.event_id], Ledger.from_fake(repo)
    )


def test_the_check_after_a_new_insert_searches_only_what_was_written_since_the_lookup(
    cache: FakeHashCache, winner: Event
) -> None:
    asked: list[tuple[set[EventFingerprint], WriteMark | None]] = []

    class Recording(FakeEventRepository):
        def contested(
            self,
            fingerprints: Collection[EventFingerprint],
            *,
            written_after: WriteMark | None = None,
        ) -> dict[EventFingerprint, list[Contender]]:
            asked.append((set(fingerprints), written_after))
            return super().contested(fingerprints, written_after=written_after)

    recording = Recording(stored=[an_event()])  # written before: tick 0
    before = recording.mark()
    DeduplicateEvent(cache=cache, events=recording, seen=FakeStoredFilter()).execute([winner])
    assert asked == [({winner.fingerprint}, before)]
    asked.clear()
    cache.flush()  # the redelivery's claim is fresh again, its event already stored
    DeduplicateEvent(cache=cache, events=recording, seen=FakeStoredFilter()).execute([winner])
    assert asked == [({winner.fingerprint}, None)]  # a stored one: the whole window
