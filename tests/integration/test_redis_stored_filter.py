"""RedisStoredFilter against the real Redis: the contract, rotation, and racing additions."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
import redis
from dedup.adapters.outbound.redis_stored_filter import RedisStoredFilter
from dedup.domain.errors import BackendUnavailableError

from tests.builders import NOON, an_event
from tests.contracts.stored_filter_contract import StoredFilterContract, refilled

pytestmark = pytest.mark.integration

WINDOW = timedelta(days=30)
SIZE = 1 << 20  # 1 MiB: a few hundred test fingerprints leave false positives negligible


def a_filter(
    client: redis.Redis[bytes], prefix: str, *, now: Callable[[], object] = lambda: NOON
) -> RedisStoredFilter:
    return RedisStoredFilter(
        client,
        window=WINDOW,
        size_bytes=SIZE,
        prefix=prefix,
        clock=now,  # type: ignore[arg-type]
    )


def lose_all(client: redis.Redis[bytes], prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


class TestRedisStoredFilter(StoredFilterContract):
    @pytest.fixture
    def seen(self, client: redis.Redis[bytes], prefix: str) -> RedisStoredFilter:
        return a_filter(client, prefix)

    @pytest.fixture
    def lose(self, client: redis.Redis[bytes], prefix: str) -> Callable[[], None]:
        return lambda: lose_all(client, prefix)


def test_an_event_is_still_known_when_the_next_generation_begins(
    client: redis.Redis[bytes], prefix: str
) -> None:
    moment = [NOON]
    seen = a_filter(client, prefix, now=lambda: moment[0])
    assert refilled(seen, [])  # this generation's filter and the next one's
    event, fresh = an_event(received_at=NOON), an_event()
    seen.add([event])

    moment[0] = NOON + WINDOW  # the next generation: its filter holds the event already
    assert len(seen.gaps()) == 1  # only the one after it still needs a refill
    assert seen.unseen({event.fingerprint, fresh.fingerprint}) == {fresh.fingerprint}

    moment[0] = NOON + 2 * WINDOW  # nothing has filled this one: it rules nothing out
    assert seen.unseen({fresh.fingerprint}) == set()


def a_small_filter(client: redis.Redis[bytes], prefix: str) -> RedisStoredFilter:
    """1023 blocks, refilled empty: a few hundred fingerprints share many of them."""
    seen = RedisStoredFilter(
        client, window=WINDOW, size_bytes=4096, prefix=prefix, clock=lambda: NOON
    )
    assert refilled(seen, [])
    return seen


def test_additions_racing_on_the_same_blocks_lose_no_bits(
    client: redis.Redis[bytes], prefix: str
) -> None:
    seen = a_small_filter(client, prefix)
    batches = [[an_event() for _ in range(400)] for _ in range(2)]

    def add_one_by_one(events: list[object]) -> None:
        for event in events:
            seen.add([event])  # type: ignore[list-item]

    threads = [threading.Thread(target=add_one_by_one, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen.unseen({e.fingerprint for batch in batches for e in batch}) == set()


def test_fingerprints_sharing_a_block_in_one_batch_all_keep_their_bits(
    client: redis.Redis[bytes], prefix: str
) -> None:
    seen = a_small_filter(client, prefix)  # many pairs of one batch share a block
    batch = [an_event() for _ in range(400)]
    seen.add(batch)
    assert seen.unseen({e.fingerprint for e in batch}) == set()


def test_an_unreachable_redis_is_a_backend_error() -> None:
    seen = RedisStoredFilter.from_url("redis://127.0.0.1:1/0", window=WINDOW, size_bytes=SIZE)
    with pytest.raises(BackendUnavailableError):
        seen.unseen({an_event().fingerprint})
    with pytest.raises(BackendUnavailableError):
        seen.add([an_event()])


def test_a_filter_whose_state_another_server_set_rules_nothing_out_until_refilled(
    client: redis.Redis[bytes], prefix: str
) -> None:
    # A restart that reloads an AOF, or a failover to a replica, keeps the header but maybe
    # not the last second of bits: the run_id beside the header no longer matches.
    seen = a_filter(client, prefix)
    assert refilled(seen, [])
    stored, fresh = an_event(), an_event()
    seen.add([stored])
    assert seen.unseen({fresh.fingerprint}) == {fresh.fingerprint}
    for key in client.scan_iter(match=f"{prefix}stored:*:run"):
        client.set(key, "0" * 40)  # as if set by another server

    assert seen.unseen({fresh.fingerprint}) == set()
    assert len(seen.gaps()) == 2
    assert refilled(seen, [stored.fingerprint])
    assert seen.unseen({stored.fingerprint, fresh.fingerprint}) == {fresh.fingerprint}


def test_a_refill_begun_on_another_server_does_not_complete(
    client: redis.Redis[bytes], prefix: str
) -> None:
    seen = a_filter(client, prefix)
    gaps = seen.gaps()
    assert all(seen.begin(gap) for gap in gaps)
    for key in client.scan_iter(match=f"{prefix}stored:*:run"):
        client.set(key, "0" * 40)
    assert not any(seen.finish(gap, iter([])) for gap in gaps)
    assert seen.unseen({an_event().fingerprint}) == set()
