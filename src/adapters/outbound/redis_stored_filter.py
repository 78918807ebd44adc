"""The StoredFilter on Redis: one blocked Bloom filter per generation, a string per filter.

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

import redis
from dedup.adapters.outbound.bloom import BloomLayout, FilterState, Generations
from dedup.adapters.outbound.redis_calls import execute
from dedup.adapters.outbound.redis_filter_keys import FilterKeys, GenerationGap
from dedup.adapters.outbound.redis_filter_scripts import FilterScripts
from dedup.adapters.outbound.redis_outage import RedisOutage
from dedup.application.ports import FilterGap, FilterRefill, StoredFilter
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event
from dedup.domain.fingerprint import EventFingerprint

log = logging.getLogger(__name__)

_HELD = ord("1")  # the probe's flag for a fingerprint whose bits are all set


def utc_now() -> datetime:
    return datetime.now(UTC)


class RedisStoredFilter(StoredFilter, FilterRefill):
    """Filters at `{prefix}stored:{<window>s:<generation>}` (one hash slot with their helpers)."""

    def __init__(
        self,
        client: redis.Redis[Any],
        *,
        window: timedelta,
        size_bytes: int,
        prefix: str = "dedup:",
        clock: Callable[[], datetime] = utc_now,
        refill_lock_seconds: int = 3600,
        outage: RedisOutage | None = None,
    ) -> None:
        self._client = client
        self._generations = Generations(window)
        self._keys = FilterKeys(prefix, self._generations)
        self._layout = BloomLayout.of_bytes(size_bytes)
        self._clock = clock
        self._lock_seconds = refill_lock_seconds
        self._scripts = FilterScripts(client)
        self._outage = outage or RedisOutage()
        self._lock = threading.Lock()  # the batch path and the refiller share `_lost`
        self._lost: set[int] = set()  # generations whose additions may have failed

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
        client = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=30, health_check_interval=30
        )
        return cls(client, window=window, size_bytes=size_bytes, prefix=prefix, outage=outage)

    def unseen(self, fingerprints: Collection[EventFingerprint]) -> set[EventFingerprint]:
        if not fingerprints:
            return set()
        fps = list(fingerprints)
        keys = self._keys.of(self._generations.of(self._clock()))

        def probe() -> tuple[int, bytes]:
            self._forget_lost()
            return self._scripts.probe(keys, self._layout.packed(fps))

        state, held = self._outage.call(probe)
        if state != FilterState.COMPLETE:
            return set()
        return {fp for fp, flag in zip(fps, held, strict=True) if flag != _HELD}

    def add(self, events: Sequence[Event]) -> None:
        by_generation: dict[int, list[EventFingerprint]] = {}
        for event in events:
            for generation in self._generations.holding(event.received_at):
                by_generation.setdefault(generation, []).append(event.fingerprint)
        if not by_generation:
            return

        def add() -> None:
            self._forget_lost()
            pipe = self._client.pipeline(transaction=False)
            for generation, fps in sorted(by_generation.items()):
                keys, packed = self._keys.of(generation), self._layout.packed(fps)
                self._scripts.add(pipe, keys, packed, self._keys.expiry(generation))
            execute(pipe)

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
        pipe = self._client.pipeline(transaction=False)
        for generation in generations:
            self._scripts.state_of(pipe, self._keys.of(generation))
        states = execute(pipe)
        return [
            self._keys.gap(generation)
            for generation, state in zip(generations, states, strict=True)
            if state != FilterState.COMPLETE
        ]

    def begin(self, gap: FilterGap) -> bool:
        generation = _generation_of(gap)
        state = self._scripts.begin(
            self._keys.of(generation),
            lock_seconds=self._lock_seconds,
            expire_at=self._keys.expiry(generation),
        )
        return state == FilterState.REFILLING

    def finish(self, gap: FilterGap, fingerprints: Iterable[EventFingerprint]) -> bool:
        generation = _generation_of(gap)
        keys = self._keys.of(generation)
        bitmap = self._layout.bitmap(fingerprints)
        try:
            self._client.set(keys.refill, bytes(bitmap), ex=self._lock_seconds)
        except redis.RedisError as exc:
            raise BackendUnavailableError("redis", str(exc)) from exc
        return self._scripts.finish(keys, expire_at=self._keys.expiry(generation))

    def close(self) -> None:
        self._client.close()

    def _forget_lost(self) -> None:
        """Set the generations whose additions failed back to INCOMPLETE, once Redis answers."""
        with self._lock:
            lost = sorted(self._lost)
        if not lost:
            return
        pipe = self._client.pipeline(transaction=False)
        for generation in lost:
            self._scripts.reset(pipe, self._keys.of(generation))
        execute(pipe)
        with self._lock:
            self._lost.difference_update(lost)
        log.warning(
            "stored filter: additions were lost while redis failed; %s rule nothing out"
            " until refilled",
            ", ".join(self._keys.of(generation).filter for generation in lost),
        )


def _generation_of(gap: FilterGap) -> int:
    if not isinstance(gap, GenerationGap):
        raise TypeError(f"{gap.name} is not a gap a RedisStoredFilter reported")
    return gap.generation
