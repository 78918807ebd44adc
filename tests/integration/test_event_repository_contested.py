"""contested() on a real ClickHouse server and on chDB, and the race settled end to end on them."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

import pytest
from attrs import define
from dedup.adapters.outbound.clickhouse.event_repository import ClickHouseEventRepository
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.inspector import ClickHouseInspector
from dedup.adapters.outbound.clickhouse.miniorm import Statement, qualified
from dedup.adapters.outbound.no_stored_filter import NoStoredFilter
from dedup.application.deduplicate_event import DeduplicateEvent
from dedup.application.ports import WriteMark
from dedup.domain.event import Event, Holder
from dedup.domain.fingerprint import EventFingerprint

from tests.accounting import Ledger, assert_accounting_invariant
from tests.builders import a_losing_copy, an_event_id
from tests.contracts.event_repository_contract import WINDOW_SECONDS, a_duplicate_of, an_event
from tests.fakes import FakeHashCache

pytestmark = pytest.mark.integration


@define
class BlindLookupRepository(ClickHouseEventRepository):
    """owners() misses everything while blind: the lookup of a batch racing another insert."""

    blind: bool = False

    def owners(self, fingerprints: Collection[EventFingerprint]) -> dict[EventFingerprint, Holder]:
        return {} if self.blind else super().owners(fingerprints)


@pytest.fixture(params=["server", "chdb"])
def store(request: pytest.FixtureRequest) -> tuple[Executor, str]:
    fixture = "migrated_server" if request.param == "server" else "migrated_chdb"
    migrated: tuple[Executor, str] = request.getfixturevalue(fixture)
    return migrated


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def repo(store: tuple[Executor, str], now: datetime) -> BlindLookupRepository:
    executor, database = store
    return BlindLookupRepository(
        executor=executor, database=database, window_seconds=WINDOW_SECONDS, clock=lambda: now
    )


def test_nothing_is_contested_when_each_fingerprint_has_one_event(
    repo: BlindLookupRepository, now: datetime
) -> None:
    event, absent = an_event(received_at=now), an_event(received_at=now)
    repo.save(events=[event], duplicates=[])
    repo.save(events=[event], duplicates=[])  # the same row twice, as before a merge
    assert repo.contested([]) == {}
    assert repo.contested([event.fingerprint, absent.fingerprint]) == {}


def test_a_fingerprint_stored_by_two_events_names_both_the_winner_first(
    repo: BlindLookupRepository, now: datetime
) -> None:
    first = an_event(received_at=now)
    second = a_losing_copy(first)
    repo.save(events=[second], duplicates=[])
    repo.save(events=[first, second], duplicates=[])

    contested = repo.contested([first.fingerprint])

    assert list(contested) == [first.fingerprint]
    assert [(c.event_id, c.content, c.received_at) for c in contested[first.fingerprint]] == [
        (first.event_id, first.content, now),
        (second.event_id, second.content, now),
    ]


def test_contenders_outside_the_dedup_window_do_not_count(
    repo: BlindLookupRepository, now: datetime
) -> None:
    old = an_event(received_at=now - timedelta(seconds=WINDOW_SECONDS + 3600))
    recent = Event(
        event_id=an_event_id(),
        fingerprint=old.fingerprint,
        content=old.content,
        received_at=now,
        source=old.source,
        payload=old.payload,
    )
    repo.save(events=[old, recent], duplicates=[])
    assert repo.contested([old.fingerprint]) == {}


def test_a_race_after_a_lost_claim_leaves_one_stored_event_and_one_recorded_duplicate(
    repo: BlindLookupRepository, store: tuple[Executor, str], now: datetime
) -> None:
    executor, database = store
    cache = FakeHashCache()
    deduplicate = DeduplicateEvent(cache=cache, events=repo, seen=NoStoredFilter())
    winner = an_event(received_at=now)
    loser = a_losing_copy(winner)

    deduplicate.execute([loser])
    cache.flush()  # Redis lost the loser's claim ...
    repo.blind = True  # ... and the winner's lookup ran before the loser's insert landed
    deduplicate.execute([winner])
    repo.blind = False
    # The merge the backstop relies on, now: FINAL must agree with the recorded winner.
    executor.execute(Statement.text(f"OPTIMIZE TABLE {qualified(database, 'events')} FINAL"))

    inspector = ClickHouseInspector(executor=executor, database=database)
    assert [e.event_id for e in inspector.events()] == [winner.event_id]
    assert [(d.event_id, d.original_event_id) for d in inspector.duplicates()] == [
        (loser.event_id, winner.event_id)
    ]
    assert cache.claims[winner.fingerprint] == winner.holder
    ledger = Ledger.of(inspector.events(), inspector.duplicates())
    assert_accounting_invariant([winner.event_id, loser.event_id], ledger)


def test_a_batch_larger_than_one_query_can_hold_is_looked_up_in_full(
    repo: BlindLookupRepository, now: datetime
) -> None:
    # ~67 characters per bound fingerprint: 6,000 of them exceed max_query_size (256 KiB).
    events = [an_event(received_at=now) for _ in range(6000)]
    repo.save(events=events, duplicates=[])
    rival = a_losing_copy(events[-1])
    repo.save(events=[rival], duplicates=[])
    duplicates = [a_duplicate_of(event) for event in events]
    repo.save(events=[], duplicates=duplicates[:10])

    fingerprints = [event.fingerprint for event in events]
    assert len(repo.owners(fingerprints)) == 6000
    assert list(repo.contested(fingerprints)) == [events[-1].fingerprint]
    assert repo.recorded(duplicates) == {dup.event_id for dup in duplicates[:10]}


def test_a_contest_written_after_the_mark_is_found_in_the_recent_parts_alone(
    repo: BlindLookupRepository, now: datetime
) -> None:
    first = an_event(received_at=now)
    second = a_losing_copy(first)
    mark = repo.mark()
    repo.save(events=[second], duplicates=[])
    repo.save(events=[first], duplicates=[])

    contested = repo.contested([first.fingerprint], written_after=mark)

    assert [c.event_id for c in contested[first.fingerprint]] == [first.event_id, second.event_id]
    assert repo.contested([second.fingerprint], written_after=mark) == contested


def test_a_mark_far_in_the_past_or_future_changes_what_is_searched_not_what_is_right(
    repo: BlindLookupRepository, now: datetime
) -> None:
    first = an_event(received_at=now)
    second = a_losing_copy(first)
    repo.save(events=[first, second], duplicates=[])
    mark = repo.mark()
    # Nothing was written after a mark taken an hour later: nothing to search.
    assert repo.contested([first.fingerprint], written_after=WriteMark(mark + 3600)) == {}
    assert list(repo.contested([first.fingerprint], written_after=WriteMark(0))) == [
        first.fingerprint
    ]


@define
class MergedMeanwhileRepository(BlindLookupRepository):
    """The recent parts listed first are gone by the time the check verifies them: merged."""

    listings: int = 0

    def _parts(self, *, modified_since: int | None) -> set[str]:
        self.listings += 1
        if modified_since is not None:
            return {"all_0_0_0_merged_away"}
        return super()._parts(modified_since=None)


def test_a_part_merged_away_between_listing_and_check_falls_back_to_the_whole_window(
    store: tuple[Executor, str], now: datetime
) -> None:
    executor, database = store
    repo = MergedMeanwhileRepository(
        executor=executor, database=database, window_seconds=WINDOW_SECONDS, clock=lambda: now
    )
    first = an_event(received_at=now)
    second = a_losing_copy(first)
    mark = repo.mark()
    repo.save(events=[first, second], duplicates=[])

    contested = repo.contested([first.fingerprint], written_after=mark)

    assert list(contested) == [first.fingerprint]
    assert repo.listings == 2
