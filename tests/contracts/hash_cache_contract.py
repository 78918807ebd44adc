"""The rules every HashCache keeps; the fake and each real adapter run this same suite."""

from __future__ import annotations

import os

from dedup.application.ports import HashCache, Repoint
from dedup.domain.event import Holder
from dedup.domain.fingerprint import EventFingerprint

from tests.builders import an_event_id


def a_fingerprint() -> EventFingerprint:
    """Random, so suites against a shared server never meet each other's keys."""
    return EventFingerprint(os.urandom(16))


def a_holder() -> Holder:
    return Holder(event_id=an_event_id(), content=a_fingerprint())


class HashCacheContract:
    """Subclass as `Test<Adapter>` and provide a `cache` fixture with an empty cache."""

    def test_the_first_claim_owns_the_fingerprint(self, cache: HashCache) -> None:
        fp, first = a_fingerprint(), a_holder()
        assert cache.claim({fp: first}) == {fp: first}

    def test_a_later_claim_by_another_holder_learns_the_first_holder(
        self, cache: HashCache
    ) -> None:
        fp, first, second = a_fingerprint(), a_holder(), a_holder()
        cache.claim({fp: first})
        assert cache.claim({fp: second}) == {fp: first}
        assert cache.claim({fp: a_holder()}) == {fp: first}

    def test_a_redelivered_claim_finds_its_own_holder(self, cache: HashCache) -> None:
        fp, holder = a_fingerprint(), a_holder()
        cache.claim({fp: holder})
        assert cache.claim({fp: holder}) == {fp: holder}

    def test_point_overrides_the_holder_it_replaces(self, cache: HashCache) -> None:
        fp, first, stored = a_fingerprint(), a_holder(), a_holder()
        cache.claim({fp: first})
        cache.point({fp: Repoint(holder=stored, replaces=first)})
        assert cache.claim({fp: a_holder()}) == {fp: stored}

    def test_point_refuses_a_stale_repoint(self, cache: HashCache) -> None:
        # Two batches raced for fp: the winner's batch pointed the claim at the winner; the
        # loser's batch, which saw its own claim and no contest, must not point it back.
        fp, loser, winner = a_fingerprint(), a_holder(), a_holder()
        cache.claim({fp: loser})
        cache.point({fp: Repoint(holder=winner, replaces=loser)})
        cache.point({fp: Repoint(holder=loser, replaces=loser)})
        again = cache.claim({fp: a_holder()})
        assert again == {fp: winner}
        assert again.stored == {fp}

    def test_point_on_a_claim_already_at_its_holder_marks_it_stored(self, cache: HashCache) -> None:
        fp, holder = a_fingerprint(), a_holder()
        cache.claim({fp: holder})
        cache.point({fp: Repoint(holder=holder, replaces=a_holder())})
        assert cache.claim({fp: a_holder()}).stored == {fp}

    def test_point_leaves_an_unclaimed_fingerprint_alone(self, cache: HashCache) -> None:
        fp, stored, later = a_fingerprint(), a_holder(), a_holder()
        cache.point({fp: Repoint(holder=stored, replaces=a_holder())})
        assert cache.claim({fp: later}) == {fp: later}

    def test_one_call_claims_many_fingerprints_each_on_its_own(self, cache: HashCache) -> None:
        held_before = {a_fingerprint(): a_holder() for _ in range(3)}
        cache.claim(held_before)
        fresh = {a_fingerprint(): a_holder() for _ in range(500)}
        later = {fp: a_holder() for fp in held_before} | fresh
        assert cache.claim(later) == held_before | fresh

    def test_a_holder_survives_the_round_trip_exactly(self, cache: HashCache) -> None:
        fp, holder = a_fingerprint(), a_holder()
        cache.claim({fp: holder})
        held = cache.claim({fp: a_holder()})[fp]
        assert held == holder
        assert held.event_id == holder.event_id
        assert held.content == holder.content

    def test_an_empty_claim_returns_nothing(self, cache: HashCache) -> None:
        assert cache.claim({}) == {}

    def test_an_empty_point_is_a_no_op(self, cache: HashCache) -> None:
        cache.point({})

    def test_only_a_pointed_holder_is_known_stored(self, cache: HashCache) -> None:
        claimed, pointed, stored = a_fingerprint(), a_fingerprint(), a_holder()
        first = cache.claim({claimed: a_holder(), pointed: a_holder()})
        assert first.stored == frozenset()
        cache.point({pointed: Repoint(holder=stored, replaces=first[pointed])})
        again = cache.claim({claimed: a_holder(), pointed: a_holder()})
        assert again.stored == {pointed}
        assert again[pointed] == stored
