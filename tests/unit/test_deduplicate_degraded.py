"""Redis is a filter: while it fails, ClickHouse alone decides, and every event is stored once."""

from __future__ import annotations

import pytest
from attrs import define
from dedup.application.deduplicate_event import DeduplicateEvent
from dedup.domain.event import Event
from dedup.domain.outcome import Outcome

from tests.accounting import Ledger, assert_accounting_invariant
from tests.builders import a_copy_of, a_losing_copy, an_event
from tests.fakes import FakeEventRepository, FakeHashCache, FakeStoredFilter


@define
class Redis:
    """The claims and the filter of one Redis, failing and answering together."""

    cache: FakeHashCache
    seen: FakeStoredFilter

    def stop(self) -> None:
        self.cache.down = self.seen.down = True

    def start(self) -> None:
        self.cache.down = self.seen.down = False


@pytest.fixture
def redis(cache: FakeHashCache, seen: FakeStoredFilter) -> Redis:
    return Redis(cache, seen)


@pytest.fixture
def redis_down(redis: Redis) -> None:
    redis.stop()


@pytest.mark.usefixtures("redis_down")
def test_a_new_event_is_stored_while_redis_is_down(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository
) -> None:
    event = an_event()
    outcome = deduplicate.execute([event])
    assert repo.stored == [event]
    assert outcome.outcomes == {event.event_id: Outcome.STORED}
    assert outcome.degraded


def test_a_copy_of_an_event_stored_before_the_outage_is_found_in_clickhouse(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository, redis: Redis
) -> None:
    original = an_event()
    deduplicate.execute([original])
    redis.stop()
    copy = a_copy_of(original)
    outcome = deduplicate.execute([copy])
    assert repo.stored == [original]
    assert outcome.outcomes == {copy.event_id: Outcome.DUPLICATE}
    assert [d.original_event_id for d in repo.duplicates] == [original.event_id]


@pytest.mark.usefixtures("redis_down")
def test_copies_and_redeliveries_while_redis_is_down_are_stored_once(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository
) -> None:
    original = an_event()
    copy, later = a_copy_of(original), a_copy_of(original)
    deduplicate.execute([original, copy])
    deduplicate.execute([original, copy])  # redelivered
    outcome = deduplicate.execute([later])
    assert repo.stored == [original]
    assert outcome.outcomes == {later.event_id: Outcome.DUPLICATE}
    ids = [original.event_id, copy.event_id, later.event_id]
    assert_accounting_invariant(ids, Ledger.from_fake(repo))


@pytest.mark.usefixtures("redis_down")
def test_two_batches_racing_while_redis_is_down_keep_one_winner(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository
) -> None:
    # No claims at all: both batches look up, neither sees the other, both insert; the
    # check after the insert settles it, as after a claim Redis lost.
    winner = an_event()
    loser = a_losing_copy(winner)
    deduplicate.execute([winner])
    repo.unseen = {winner.event_id}  # the loser's lookup ran before the winner landed
    outcome = deduplicate.execute([loser])
    repo.unseen = set()
    assert outcome.outcomes == {loser.event_id: Outcome.DUPLICATE}
    assert repo.final() == [winner]
    assert_accounting_invariant([winner.event_id, loser.event_id], Ledger.from_fake(repo))


def test_a_filter_that_missed_additions_rules_nothing_out_when_redis_answers_again(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository, redis: Redis
) -> None:
    redis.stop()
    original = an_event()
    deduplicate.execute([original])  # stored without its bits in the filter
    redis.start()  # the same server, its data kept: the filter says complete
    copy = a_copy_of(original)  # its claim was never written either
    outcome = deduplicate.execute([copy])
    assert outcome.outcomes == {copy.event_id: Outcome.DUPLICATE}
    assert repo.stored == [original]
    assert redis.seen.state == "incomplete"  # until the refiller fills it from ClickHouse


def test_claims_and_marks_are_used_again_once_redis_answers(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository, redis: Redis
) -> None:
    redis.stop()
    deduplicate.execute([an_event()])
    redis.start()
    original: Event = an_event()
    first = deduplicate.execute([original])
    assert not first.degraded
    assert redis.cache.stored >= {original.fingerprint}  # marked stored in Redis again
    repo.looked_up.clear()
    copy = a_copy_of(original)
    assert deduplicate.execute([copy]).outcomes == {copy.event_id: Outcome.DUPLICATE}
    assert original.fingerprint not in repo.looked_up  # Redis answered it, not ClickHouse


def test_redis_failing_before_the_re_point_leaves_the_batch_stored(
    deduplicate: DeduplicateEvent, repo: FakeEventRepository, cache: FakeHashCache
) -> None:
    original = an_event()
    deduplicate.execute([original])
    cache.flush()  # the claim is gone, so the copy's batch will want to re-point it
    cache.down_after_claim = True
    copy = a_copy_of(original)
    outcome = deduplicate.execute([copy])
    assert outcome.outcomes == {copy.event_id: Outcome.DUPLICATE}
    assert repo.stored == [original]
    assert outcome.degraded
