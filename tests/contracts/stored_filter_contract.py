"""The rules every stored filter keeps; the fake and the Redis filter run this same suite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from dedup.application.ports import FilterRefill, StoredFilter
from dedup.domain.event import Event
from dedup.domain.fingerprint import EventFingerprint

from tests.builders import an_event
from tests.contracts.hash_cache_contract import a_fingerprint


class Filter(StoredFilter, FilterRefill, Protocol):
    pass


def refilled(seen: Filter, stored: list[EventFingerprint]) -> bool:
    """Run the refill protocol over every gap; whether each one completed."""
    gaps = seen.gaps()
    return all(seen.begin(gap) and seen.finish(gap, iter(stored)) for gap in gaps)


def events(count: int) -> list[Event]:
    return [an_event() for _ in range(count)]


class StoredFilterContract:
    """Subclass as `Test<Adapter>` with fixtures `seen` (a new, empty filter) and `lose` (a
    callable that loses it as a Redis flush would)."""

    def test_a_new_filter_rules_nothing_out(self, seen: Filter) -> None:
        fps = {a_fingerprint() for _ in range(50)}
        assert seen.unseen(fps) == set()
        assert seen.gaps() != []

    def test_a_refilled_filter_rules_out_what_it_never_saw(self, seen: Filter) -> None:
        stored = [a_fingerprint() for _ in range(200)]
        assert refilled(seen, stored)
        assert seen.gaps() == []
        others = {a_fingerprint() for _ in range(200)}
        assert seen.unseen([*stored, *others]) == others

    def test_an_added_event_is_never_ruled_out(self, seen: Filter) -> None:
        assert refilled(seen, [])
        added = events(300)
        seen.add(added)
        assert seen.unseen({e.fingerprint for e in added}) == set()

    def test_a_lost_filter_rules_nothing_out_until_refilled(
        self, seen: Filter, lose: Callable[[], None]
    ) -> None:
        added = events(10)
        assert refilled(seen, [])
        seen.add(added)
        lose()
        assert seen.unseen({a_fingerprint()}) == set()
        assert seen.gaps() != []
        assert refilled(seen, [e.fingerprint for e in added])
        assert seen.unseen({e.fingerprint for e in added}) == set()

    def test_a_loss_during_a_refill_keeps_it_from_completing(
        self, seen: Filter, lose: Callable[[], None]
    ) -> None:
        gaps = seen.gaps()
        assert all(seen.begin(gap) for gap in gaps)
        lose()
        assert not any(seen.finish(gap, iter([])) for gap in gaps)
        assert seen.unseen({a_fingerprint()}) == set()

    def test_only_one_refill_runs_at_a_time_and_none_on_a_complete_filter(
        self, seen: Filter
    ) -> None:
        [gap, *_] = seen.gaps()
        assert seen.begin(gap)
        assert not seen.begin(gap)
        assert seen.finish(gap, iter([]))
        assert not seen.begin(gap)

    def test_events_added_while_refilling_survive_the_refill(self, seen: Filter) -> None:
        gaps = seen.gaps()
        assert all(seen.begin(gap) for gap in gaps)
        added = events(20)
        seen.add(added)
        assert all(seen.finish(gap, iter([])) for gap in gaps)
        assert seen.unseen({e.fingerprint for e in added}) == set()
