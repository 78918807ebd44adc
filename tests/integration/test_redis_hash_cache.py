"""RedisHashCache against the real Redis: the HashCache contract, expiry, encoding, outages."""

from __future__ import annotations

import time

import pytest
import redis
from dedup.adapters.outbound.redis_hash_cache import RedisHashCache, decode_holder, encode_holder
from dedup.application.ports import Repoint
from dedup.domain.errors import BackendUnavailableError

from tests.contracts.hash_cache_contract import HashCacheContract, a_fingerprint, a_holder
from tests.integration.conftest import REDIS_URL

pytestmark = pytest.mark.integration


def _cache(client: redis.Redis[bytes], prefix: str, *, ttl_seconds: int = 60) -> RedisHashCache:
    return RedisHashCache(client, ttl_seconds=ttl_seconds, prefix=prefix)


class TestRedisHashCache(HashCacheContract):
    @pytest.fixture
    def cache(self, client: redis.Redis[bytes], prefix: str) -> RedisHashCache:
        return _cache(client, prefix)


def test_a_claim_is_stored_under_the_fingerprint_with_the_ttl(
    client: redis.Redis[bytes], prefix: str
) -> None:
    fp, holder = a_fingerprint(), a_holder()
    _cache(client, prefix, ttl_seconds=60).claim({fp: holder})
    key = f"{prefix}{fp.hex}"
    assert client.get(key) == encode_holder(holder)
    assert 0 < client.ttl(key) <= 60


def test_a_claim_expires_after_the_ttl(client: redis.Redis[bytes], prefix: str) -> None:
    cache = _cache(client, prefix, ttl_seconds=1)
    fp, first, second = a_fingerprint(), a_holder(), a_holder()
    cache.claim({fp: first})
    deadline = time.monotonic() + 5
    while client.exists(f"{prefix}{fp.hex}"):
        assert time.monotonic() < deadline, "the claim outlived its ttl"
        time.sleep(0.05)
    assert cache.claim({fp: second}) == {fp: second}


def test_a_client_that_decodes_responses_reads_claims_too(prefix: str) -> None:
    text_client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        cache = RedisHashCache(text_client, ttl_seconds=60, prefix=prefix)
        fp, first = a_fingerprint(), a_holder()
        cache.claim({fp: first})
        assert cache.claim({fp: a_holder()}) == {fp: first}
    finally:
        text_client.close()


def test_a_foreign_value_under_the_prefix_is_unknown_not_guessed(
    client: redis.Redis[bytes], prefix: str
) -> None:
    fp, holder = a_fingerprint(), a_holder()
    client.set(f"{prefix}{fp.hex}", "not-a-claim")
    claims = _cache(client, prefix).claim({fp: holder})
    assert claims == {fp: holder}  # nobody's that we can tell: ClickHouse decides
    assert claims.stored == frozenset()
    assert client.get(f"{prefix}{fp.hex}") == b"not-a-claim"  # only a re-point replaces it


def test_a_re_point_replaces_a_foreign_value_with_the_stored_holder(
    client: redis.Redis[bytes], prefix: str
) -> None:
    fp, holder = a_fingerprint(), a_holder()
    client.set(f"{prefix}{fp.hex}", "0" * 64 + "x")
    _cache(client, prefix).point({fp: Repoint(holder=holder, replaces=a_holder())})
    assert client.get(f"{prefix}{fp.hex}") == encode_holder(holder, stored=True)


@pytest.mark.parametrize("raw", [b"", b"0" * 63, b"0" * 65, b"G" * 64, b"A" * 64, " " + "0" * 63])
def test_only_64_lowercase_hex_digits_decode_as_a_holder(raw: bytes | str) -> None:
    with pytest.raises(ValueError):
        decode_holder(raw)


def test_an_unreachable_redis_is_reported_as_unavailable() -> None:
    # Port 1 on loopback refuses at once; nothing listens there.
    cache = RedisHashCache.from_url("redis://127.0.0.1:1/0", ttl_seconds=60)
    try:
        with pytest.raises(BackendUnavailableError) as raised:
            cache.claim({a_fingerprint(): a_holder()})
        assert raised.value.backend == "redis"
        with pytest.raises(BackendUnavailableError):
            cache.point({a_fingerprint(): Repoint(holder=a_holder(), replaces=a_holder())})
        with pytest.raises(BackendUnavailableError):
            cache.ping()
    finally:
        cache.close()


def test_a_cache_from_a_url_pings_and_claims_on_that_server(
    client: redis.Redis[bytes], prefix: str
) -> None:
    cache = RedisHashCache.from_url(REDIS_URL, ttl_seconds=60, prefix=prefix)
    fp, holder = a_fingerprint(), a_holder()
    try:
        cache.ping()
        cache.claim({fp: holder})
    finally:
        cache.close()
    assert client.get(f"{prefix}{fp.hex}") == encode_holder(holder)
