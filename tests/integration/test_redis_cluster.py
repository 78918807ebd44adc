"""The Redis adapters on a Redis Cluster of the test run's own: the contracts, the spread of
keys over the masters, and a failover read as the loss it is."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from dedup.adapters.outbound.redis_client import RedisConnection
from dedup.adapters.outbound.redis_hash_cache import RedisHashCache
from dedup.adapters.outbound.redis_stored_filter import CLUSTER_SHARDS, RedisStoredFilter
from dedup.domain.errors import BackendUnavailableError
from dedup.infrastructure.container import opened
from dedup.infrastructure.settings import Settings

from tests.builders import NOON, an_event
from tests.contracts.hash_cache_contract import HashCacheContract, a_fingerprint, a_holder
from tests.contracts.stored_filter_contract import StoredFilterContract, refilled
from tests.redis_cluster import RedisClusterServers, cli
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

WINDOW = timedelta(days=30)
SIZE = 1 << 20


@pytest.fixture
def connection(redis_cluster: RedisClusterServers) -> Iterator[RedisConnection]:
    connection = RedisConnection.from_url(redis_cluster.url, socket_timeout=5)
    yield connection
    connection.close()


@pytest.fixture
def prefix(connection: RedisConnection) -> Iterator[str]:
    prefix = f"test:dedup:{uuid.uuid4().hex}:"
    yield prefix
    lose_all(connection, prefix)


def lose_all(connection: RedisConnection, prefix: str) -> None:
    """Delete the test's keys on every master (SCAN on a cluster client visits them all)."""
    client = connection.client()
    for key in list(client.scan_iter(match=f"{prefix}*", count=1000)):
        client.delete(key)


def a_filter(connection: RedisConnection, prefix: str) -> RedisStoredFilter:
    return RedisStoredFilter(
        connection,
        window=WINDOW,
        size_bytes=SIZE,
        prefix=prefix,
        clock=lambda: NOON,
        shards=CLUSTER_SHARDS,
    )


class TestClusterHashCache(HashCacheContract):
    @pytest.fixture
    def cache(self, connection: RedisConnection, prefix: str) -> RedisHashCache:
        return RedisHashCache(connection, ttl_seconds=60, prefix=prefix)


class TestClusterStoredFilter(StoredFilterContract):
    @pytest.fixture
    def seen(self, connection: RedisConnection, prefix: str) -> RedisStoredFilter:
        return a_filter(connection, prefix)

    @pytest.fixture
    def lose(self, connection: RedisConnection, prefix: str) -> Callable[[], None]:
        return lambda: lose_all(connection, prefix)


@pytest.fixture
def cache(connection: RedisConnection, prefix: str) -> RedisHashCache:
    return RedisHashCache(connection, ttl_seconds=60, prefix=prefix)


@pytest.fixture
def answering(connection: RedisConnection, prefix: str) -> RedisStoredFilter:
    """A filter of the test's own, refilled empty: it answers."""
    seen = a_filter(connection, prefix)
    assert refilled(seen, [])
    return seen


def test_claims_and_the_filter_spread_over_every_master(
    redis_cluster: RedisClusterServers,
    cache: RedisHashCache,
    answering: RedisStoredFilter,
    prefix: str,
) -> None:
    seen = answering
    events = [an_event(received_at=NOON) for _ in range(3000)]
    cache.claim({event.fingerprint: a_holder() for event in events})
    seen.add(events)

    claims = redis_cluster.keys_per_master(f"{prefix}[0-9a-f]*")
    filters = redis_cluster.keys_per_master(f"{prefix}stored:*}}")
    assert sum(claims.values()) == 3000
    assert len(claims) == 3 and min(claims.values()) > 800  # about a third each
    # This generation's filter and the next, CLUSTER_SHARDS strings each, on all three.
    assert sum(filters.values()) == 2 * CLUSTER_SHARDS
    assert len(filters) == 3 and min(filters.values()) > 0
    assert seen.unseen({e.fingerprint for e in events}) == set()


@pytest.mark.usefixtures("answering")
def test_every_filter_shard_is_a_key_of_its_own_slot(
    redis_cluster: RedisClusterServers, prefix: str
) -> None:
    port = redis_cluster.masters()[0]
    names = [n for n in redis_cluster.scan(port, f"{prefix}stored:*") if n.endswith("}")]
    slots = {cli(port, "CLUSTER", "KEYSLOT", name) for name in names}
    assert len(slots) == len(names) > 0
    for slot in slots:
        assert cli(port, "CLUSTER", "COUNTKEYSINSLOT", slot) != "0"


def test_a_failover_reads_as_a_lost_filter_and_claims_go_on(
    redis_cluster: RedisClusterServers, cache: RedisHashCache, answering: RedisStoredFilter
) -> None:
    seen = answering
    fresh = {a_fingerprint() for _ in range(300)}
    assert seen.unseen(fresh) == fresh

    # A replica takes over (with every write: CLUSTER FAILOVER waits for it to catch up), but
    # it is another server: the filter shards it now serves may lack the last writes.
    master = redis_cluster.masters()[0]
    replica = redis_cluster.replica_of(master)
    assert cli(replica, "CLUSTER", "FAILOVER") == "OK"  # started: it ends a moment later
    wait_until(lambda: replica in redis_cluster.masters(), timeout=30, what="the failover")
    redis_cluster.wait_healthy()

    unseen = seen.unseen(fresh)
    assert unseen < fresh  # the moved shards rule nothing out now, the others still do
    assert seen.gaps() != []
    assert refilled(seen, [])
    assert seen.unseen(fresh) == fresh
    fp, first = a_fingerprint(), a_holder()
    assert cache.claim({fp: first}) == {fp: first}  # the client follows the new slot map
    assert cache.claim({fp: a_holder()}) == {fp: first}


def test_a_process_starts_while_the_cluster_is_away() -> None:
    cache = RedisHashCache.from_url("redis+cluster://127.0.0.1:1,127.0.0.1:2/", ttl_seconds=60)
    with pytest.raises(BackendUnavailableError):
        cache.claim({a_fingerprint(): a_holder()})
    with pytest.raises(BackendUnavailableError):
        cache.ping()


def test_the_container_wires_the_cluster_for_claims_filter_and_readiness(
    redis_cluster: RedisClusterServers, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=redis_cluster.url)
    with opened(settings) as container:
        cache, seen = container.hash_cache(), container.stored_filter()
        assert isinstance(cache, RedisHashCache) and isinstance(seen, RedisStoredFilter)
        cache.ping()  # what /health/ready asks, of every node
        fp, holder = a_fingerprint(), a_holder()
        assert cache.claim({fp: holder}) == {fp: holder}
        seen.gaps()  # every shard's state, read through the cluster pipeline
