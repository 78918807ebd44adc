"""MemoryHashCache: the HashCache contract, plus expiry and the size bound."""

from __future__ import annotations

import threading

import pytest
from dedup.adapters.outbound.memory_hash_cache import MemoryHashCache
from dedup.application.ports import Repoint
from dedup.domain.event import Holder

from tests.contracts.hash_cache_contract import HashCacheContract, a_fingerprint, a_holder


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class TestMemoryHashCache(HashCacheContract):
    @pytest.fixture
    def cache(self) -> MemoryHashCache:
        return MemoryHashCache(ttl_seconds=60)


def test_a_claim_expires_after_the_ttl(clock: FakeClock) -> None:
    cache = MemoryHashCache(ttl_seconds=10, clock=clock)
    fp, first, second = a_fingerprint(), a_holder(), a_holder()
    cache.claim({fp: first})
    clock.now += 9.9
    assert cache.claim({fp: second}) == {fp: first}
    clock.now += 0.1
    assert cache.claim({fp: second}) == {fp: second}


def test_a_claim_that_finds_a_holder_does_not_extend_its_life(clock: FakeClock) -> None:
    cache = MemoryHashCache(ttl_seconds=10, clock=clock)
    fp, first, second = a_fingerprint(), a_holder(), a_holder()
    cache.claim({fp: first})
    clock.now += 6
    cache.claim({fp: second})
    clock.now += 6
    assert cache.claim({fp: second}) == {fp: second}


def test_point_starts_a_new_ttl(clock: FakeClock) -> None:
    cache = MemoryHashCache(ttl_seconds=10, clock=clock)
    fp, first, stored = a_fingerprint(), a_holder(), a_holder()
    cache.claim({fp: first})
    clock.now += 6
    cache.point({fp: Repoint(holder=stored, replaces=first)})
    clock.now += 6
    assert cache.claim({fp: a_holder()}) == {fp: stored}


def test_expired_entries_are_dropped_from_memory(clock: FakeClock) -> None:
    cache = MemoryHashCache(ttl_seconds=10, clock=clock)
    cache.claim({a_fingerprint(): a_holder() for _ in range(100)})
    assert len(cache) == 100
    clock.now += 10
    assert len(cache) == 0


def test_a_full_cache_forgets_the_oldest_claim_first(clock: FakeClock) -> None:
    cache = MemoryHashCache(ttl_seconds=10, max_entries=3, clock=clock)
    fps = [a_fingerprint() for _ in range(4)]
    holders = [a_holder() for _ in range(4)]
    for fp, holder in zip(fps, holders, strict=True):
        cache.claim({fp: holder})
        clock.now += 1
    assert len(cache) == 3
    newcomer = a_holder()
    assert cache.claim({fps[0]: newcomer}) == {fps[0]: newcomer}  # evicted, so claimable again
    assert cache.claim({fps[3]: a_holder()}) == {fps[3]: holders[3]}


def test_concurrent_claims_on_one_fingerprint_elect_exactly_one_holder() -> None:
    cache = MemoryHashCache(ttl_seconds=60)
    fp = a_fingerprint()
    contenders = [a_holder() for _ in range(16)]
    start = threading.Barrier(len(contenders))
    seen: list[Holder] = []

    def contend(holder: Holder) -> None:
        start.wait()
        seen.append(cache.claim({fp: holder})[fp])

    threads = [threading.Thread(target=contend, args=(h,)) for h in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == len(contenders)
    assert len(set(seen)) == 1
    assert seen[0] in contenders


@pytest.mark.parametrize(("ttl_seconds", "max_entries"), [(0, 10), (1, 0)])
def test_a_cache_without_time_or_room_is_refused(ttl_seconds: int, max_entries: int) -> None:
    with pytest.raises(ValueError):
        MemoryHashCache(ttl_seconds=ttl_seconds, max_entries=max_entries)


def test_a_ping_answers_and_leaves_the_claims_as_they_were() -> None:
    cache = MemoryHashCache(ttl_seconds=60)
    fp, first = a_fingerprint(), a_holder()
    cache.claim({fp: first})

    cache.ping()

    assert cache.claim({fp: a_holder()}) == {fp: first}
