"""The Redis adapters through outages of a redis-server of the test's own: stopped, paused,
refusing writes, restarted with its data. Storage never waits for Redis, and a filter that
missed additions never answers until refilled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from bench.processes import free_port
from dedup.adapters.outbound.no_stored_filter import NoStoredFilter
from dedup.adapters.outbound.redis_hash_cache import RedisHashCache, encode_holder
from dedup.adapters.outbound.redis_outage import RedisOutage
from dedup.adapters.outbound.redis_stored_filter import RedisStoredFilter
from dedup.application.deduplicate_event import DeduplicateEvent
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.outcome import Outcome

from tests.builders import NOON, a_copy_of, an_event
from tests.contracts.hash_cache_contract import a_fingerprint, a_holder
from tests.contracts.stored_filter_contract import refilled
from tests.fakes import FakeEventRepository
from tests.redis_server import RedisServer
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

PROBE = 0.2  # seconds between probes while degraded


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(port=free_port(), workdir=tmp_path, appendonly=True)
    server.start()
    yield server
    server.resume()
    server.stop()


def a_client(server: RedisServer) -> redis.Redis[bytes]:
    # Short timeouts: a paused server costs the test a fraction of a second per call.
    return redis.Redis.from_url(server.url, socket_connect_timeout=0.5, socket_timeout=0.5)


@pytest.fixture
def outage() -> RedisOutage:
    return RedisOutage(probe_every=PROBE)


@pytest.fixture
def cache(server: RedisServer, outage: RedisOutage) -> Iterator[RedisHashCache]:
    cache = RedisHashCache(a_client(server), ttl_seconds=600, outage=outage)
    yield cache
    cache.close()


@pytest.fixture
def seen(server: RedisServer, outage: RedisOutage) -> Iterator[RedisStoredFilter]:
    seen = RedisStoredFilter(
        a_client(server),
        window=timedelta(days=30),
        size_bytes=1 << 16,
        clock=lambda: NOON,
        outage=outage,
    )
    yield seen
    seen.close()


def test_a_stopped_redis_fails_at_once_until_a_probe_finds_it_back(
    server: RedisServer,
) -> None:
    outage = RedisOutage(probe_every=2.0)
    cache = RedisHashCache(a_client(server), ttl_seconds=600, outage=outage)
    fp, holder = a_fingerprint(), a_holder()
    server.stop()
    with pytest.raises(BackendUnavailableError):
        cache.claim({fp: holder})
    assert outage.down
    server.start()
    # Back, but not asked until the next probe: the call fails without a round trip.
    with pytest.raises(BackendUnavailableError, match="degraded"):
        cache.claim({fp: holder})
    wait_until(lambda: _answers(cache), timeout=5, interval=0.1, what="the probe")
    assert cache.claim({fp: holder}) == {fp: holder}
    assert not outage.down
    cache.close()


def test_a_paused_redis_costs_one_timeout_per_probe_not_one_per_batch(
    server: RedisServer, cache: RedisHashCache
) -> None:
    server.pause()
    with pytest.raises(BackendUnavailableError):
        cache.claim({a_fingerprint(): a_holder()})
    started = time.monotonic()
    for _ in range(20):
        with pytest.raises(BackendUnavailableError):
            cache.claim({a_fingerprint(): a_holder()})
    assert time.monotonic() - started < 0.5
    server.resume()


def test_additions_lost_while_redis_refused_writes_make_the_filter_refill_before_it_answers(
    server: RedisServer, seen: RedisStoredFilter
) -> None:
    # The same server all along (run_id and data kept): only its writes were refused.
    assert refilled(seen, [])
    stored, fresh = an_event(), an_event()
    server.cli("CONFIG", "SET", "maxmemory", "1")  # OOM: noeviction refuses every write
    with pytest.raises(BackendUnavailableError):
        seen.add([stored])  # the worker stores the event anyway
    server.cli("CONFIG", "SET", "maxmemory", "0")
    time.sleep(PROBE)

    assert seen.unseen({stored.fingerprint, fresh.fingerprint}) == set()
    assert len(seen.gaps()) == 2
    assert refilled(seen, [stored.fingerprint])  # the refill reads it from ClickHouse
    assert seen.unseen({stored.fingerprint, fresh.fingerprint}) == {fresh.fingerprint}


def test_a_redis_restarted_with_its_data_keeps_claims_and_its_filter_is_refilled(
    server: RedisServer, cache: RedisHashCache, seen: RedisStoredFilter
) -> None:
    fp, holder = a_fingerprint(), a_holder()
    cache.claim({fp: holder})
    assert refilled(seen, [])
    added = an_event()
    seen.add([added])
    time.sleep(1.2)  # appendfsync everysec
    server.restart()
    time.sleep(PROBE)
    wait_until(lambda: _answers(cache), timeout=5, what="the cache to answer again")

    assert cache.claim({fp: a_holder()}) == {fp: holder}
    # Another run_id: the header may have outlived the last second of bits.
    assert seen.unseen({an_event().fingerprint}) == set()
    assert refilled(seen, [added.fingerprint])


def _answers(cache: RedisHashCache) -> bool:
    try:
        cache.claim({a_fingerprint(): a_holder()})
    except BackendUnavailableError:
        return False
    return True


def test_batches_are_stored_once_through_a_redis_that_paused_and_came_back(
    server: RedisServer, cache: RedisHashCache, seen: RedisStoredFilter
) -> None:
    repo = FakeEventRepository()
    deduplicate = DeduplicateEvent(cache=cache, events=repo, seen=seen)
    assert refilled(seen, [])
    before = an_event()
    deduplicate.execute([before])

    server.pause()  # same server, same data: its claims and filter come back as they were
    during = an_event()
    for batch in ([during], [a_copy_of(before)], [during, a_copy_of(during)]):
        assert deduplicate.execute(batch).degraded
    server.resume()
    time.sleep(PROBE)

    copies = [a_copy_of(before), a_copy_of(during)]
    outcome = deduplicate.execute(copies)
    assert not outcome.degraded
    assert set(outcome.outcomes.values()) == {Outcome.DUPLICATE}
    assert sorted(e.event_id for e in repo.stored) == sorted([before.event_id, during.event_id])
    # The filter missed `during`'s bits: it rules nothing out until refilled.
    assert seen.gaps() != []


def test_a_value_that_is_no_claim_is_unknown_and_the_stored_holder_replaces_it(
    server: RedisServer, cache: RedisHashCache
) -> None:
    client = a_client(server)
    event, hashed, holder = an_event(), a_fingerprint(), a_holder()
    key = f"dedup:{event.fingerprint.hex}"
    client.set(key, "not-a-claim")
    client.hset(f"dedup:{hashed.hex}", "field", "value")  # another type altogether
    assert cache.claim({hashed: holder}) == {hashed: holder}  # unknown: ClickHouse decides

    deduplicate = DeduplicateEvent(cache=cache, events=FakeEventRepository(), seen=NoStoredFilter())
    outcome = deduplicate.execute([event])
    assert outcome.outcomes == {event.event_id: Outcome.STORED}
    assert not outcome.degraded  # no outage: one value Redis holds is not Redis failing
    assert client.get(key) == encode_holder(event.holder, stored=True)
    client.close()
