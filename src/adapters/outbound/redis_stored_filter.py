"""The StoredFilter on Redis: one blocked Bloom filter per generation, split on a cluster.

The layout and rotation are in bloom.py, the scripts in redis_filter_scripts.py, and the
argument that a refilled filter misses nothing stored in docs/stored-filter.md.

An addition that fails may be followed by the insert anyway (the worker goes on without
Redis), so its generations are remembered and set back to INCOMPLETE before this filter
answers or reports its gaps again: the refill then reads those inserts from ClickHouse.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from dedup.adapters.outbound.bloom import BloomLayout, FilterState, Generations
from dedup.adapters.outbound.redis_calls import RedisPipeline, pipelined
from dedup.adapters.outbound.redis_client import CLUSTER_SCHEMES, RedisClient, RedisConnection
from dedup.adapters.outbound.redis_filter_keys import FilterKeys, GenerationGap
from dedup.adapters.outbound.redis_filter_scripts import FilterScripts
from dedup.adapters.outbound.redis_outage import RedisOutage
from dedup.application.ports import FilterGap, FilterRefill, StoredFilter
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event
from dedup.domain.fingerprint import EventFingerprint

log = logging.getLogger(__name__)

_HELD = ord("1")  # the probe's flag for a fingerprint whose bits are all set
# Keys per generation on a Redis Cluster: enough that the masters share the filter evenly,
# few enough that a batch's probe stays a few dozen script calls, one round trip per node.
CLUSTER_SHARDS = 64


def utc_now() -> datetime:
    return datetime.now(UTC)


class RedisStoredFilter(StoredFilter, FilterRefill):
    """Filters at `{prefix}stored:{<window>s:<generation>}`, in `shards` keys on a cluster."""

    def __init__(
        self,
        client: RedisClient | RedisConnection,
        *,
        window: timedelta,
        size_bytes: int,
        prefix: str = "dedup:",
        clock: Callable[[], datetime] = utc_now,
        refill_lock_seconds: int = 3600,
        outage: RedisOutage | None = None,
        shards: int = 1,
    ) -> None:
        self._redis = client if isinstance(client, RedisConnection) else RedisConnection.of(client)
        self._generations = Generations(window)
        self._keys = FilterKeys(prefix, self._generations, shards)
        self._layout = BloomLayout.of_bytes(size_bytes // shards)
        self._clock = clock
        self._lock_seconds = refill_lock_seconds
        self._scripts = FilterScripts(self._redis)
        self._outage = outage or RedisOutage()
        self._lock = threading.Lock()  # the batch path and the refiller share `_lost`
        self._lost: set[int] = set()  # generations whose additions may have failed
        self._began: dict[int, set[int]] = {}  # the shards this refiller began, by generation

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        window: timedelta,
        size_bytes: int,
        prefix: str = "dedup:",
        outage: RedisOutage | None = None,
    ) -> RedisStoredFilter:
        """One string per generation on one server; CLUSTER_SHARDS strings on a cluster."""
        shards = CLUSTER_SHARDS if urlsplit(url).scheme in CLUSTER_SCHEMES else 1
        connection = RedisConnection.from_url(
            url, socket_connect_timeout=2, socket_timeout=30, health_check_interval=30
        )
        return cls(
            connection,
            window=window,
            size_bytes=size_bytes,
            prefix=prefix,
            outage=outage,
            shards=shards,
        )

    def unseen(self, fingerprints: Collection[EventFingerprint]) -> set[EventFingerprint]:
        if not fingerprints:
            return set()
        shards = self._keys.of(self._generations.of(self._clock()))
        by_shard = self._by_shard(fingerprints)

        def probe() -> list[tuple[int, bytes]]:
            self._forget_lost()
            if len(shards) == 1:  # one server: one script call, no pipeline
                return [self._scripts.probe(shards[0], self._layout.packed(by_shard[0]))]

            def probes(pipe: RedisPipeline) -> None:
                for shard, fps in by_shard.items():
                    self._scripts.queue_probe(pipe, shards[shard], self._layout.packed(fps))

            replies = self._pipelined(probes)
            return [(int(state), bytes(held)) for state, held in replies]

        unseen: set[EventFingerprint] = set()
        for fps, (state, held) in zip(by_shard.values(), self._outage.call(probe), strict=True):
            if state == FilterState.COMPLETE:  # another shard's state says nothing of these
                unseen.update(fp for fp, flag in zip(fps, held, strict=True) if flag != _HELD)
        return unseen

    def add(self, events: Sequence[Event]) -> None:
        by_generation: dict[int, list[EventFingerprint]] = {}
        for event in events:
            for generation in self._generations.holding(event.received_at):
                by_generation.setdefault(generation, []).append(event.fingerprint)
        if not by_generation:
            return

        def additions(pipe: RedisPipeline) -> None:
            for generation, fps in sorted(by_generation.items()):
                shards, expire_at = self._keys.of(generation), self._keys.expiry(generation)
                for shard, shard_fps in self._by_shard(fps).items():
                    packed = self._layout.packed(shard_fps)
                    self._scripts.add(pipe, shards[shard], packed, expire_at)

        def add() -> None:
            self._forget_lost()
            self._pipelined(additions)

        try:
            self._outage.call(add)
        except BackendUnavailableError:
            with self._lock:  # these events may be stored without their bits
                self._lost.update(by_generation)
            raise

    def gaps(self) -> list[FilterGap]:
        self._forget_lost()
        current = self._generations.of(self._clock())
        generations = (current, current + 1)

        def states(pipe: RedisPipeline) -> None:
            for generation in generations:
                for keys in self._keys.of(generation):
                    self._scripts.state_of(pipe, keys)

        replies = iter(self._pipelined(states))
        return [
            self._keys.gap(generation)
            for generation in generations
            # every reply is read: a generation is a gap when any of its shards is
            if not all([next(replies) == FilterState.COMPLETE for _ in range(self._keys.shards)])
        ]

    def begin(self, gap: FilterGap) -> bool:
        generation = _generation_of(gap)
        shards, expire_at = self._keys.of(generation), self._keys.expiry(generation)

        def begins(pipe: RedisPipeline) -> None:
            for keys in shards:
                self._scripts.begin(
                    pipe, keys, lock_seconds=self._lock_seconds, expire_at=expire_at
                )

        states = self._pipelined(begins)
        # Only the shards this call began are this refill's to finish: another refiller's
        # (locked) or a complete one are left alone.
        began = [shard for shard, state in enumerate(states) if state == FilterState.REFILLING]
        with self._lock:
            self._began.setdefault(generation, set()).update(began)
        return bool(began)

    def finish(self, gap: FilterGap, fingerprints: Iterable[EventFingerprint]) -> bool:
        generation = _generation_of(gap)
        with self._lock:
            began = sorted(self._began.pop(generation, ()))
        if not began:
            return False
        shards, expire_at = self._keys.of(generation), self._keys.expiry(generation)
        by_shard = self._by_shard(fingerprints)

        def finishes(pipe: RedisPipeline) -> None:
            for shard in began:
                bitmap = bytes(self._layout.bitmap(by_shard.get(shard, [])))
                self._scripts.finish(
                    pipe, shards[shard], bitmap, ttl=self._lock_seconds, expire_at=expire_at
                )

        replies = self._pipelined(finishes)
        return all(bool(done) for done in replies[1::2])  # each shard: upload, then finish

    def close(self) -> None:
        self._redis.close()

    def _by_shard(self, fps: Iterable[EventFingerprint]) -> dict[int, list[EventFingerprint]]:
        if self._keys.shards == 1:
            return {0: list(fps)}
        by_shard: dict[int, list[EventFingerprint]] = {}
        for fp in fps:
            by_shard.setdefault(self._keys.shard_of(fp), []).append(fp)
        return by_shard

    def _pipelined(self, fill: Callable[[RedisPipeline], None]) -> list[Any]:
        return pipelined(self._redis, fill, scripts=self._scripts.all())

    def _forget_lost(self) -> None:
        """Set the generations whose additions failed back to INCOMPLETE, once Redis answers."""
        with self._lock:
            lost = sorted(self._lost)
        if not lost:
            return

        def resets(pipe: RedisPipeline) -> None:
            for generation in lost:
                for keys in self._keys.of(generation):
                    self._scripts.reset(pipe, keys)

        self._pipelined(resets)
        with self._lock:
            self._lost.difference_update(lost)
        log.warning(
            "stored filter: additions were lost while redis failed; %s rule nothing out"
            " until refilled",
            ", ".join(self._keys.name(generation) for generation in lost),
        )


def _generation_of(gap: FilterGap) -> int:
    if not isinstance(gap, GenerationGap):
        raise TypeError(f"{gap.name} is not a gap a RedisStoredFilter reported")
    return gap.generation
