"""The HashCache in process memory, for the embedded single-process profile."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from dedup.application.ports import Claims, HashCache, Repoint
from dedup.domain.event import Holder
from dedup.domain.fingerprint import EventFingerprint


class MemoryHashCache(HashCache):
    """Redis's claim semantics in a dict: entries expire after the ttl, and when the cache is
    full the oldest is evicted. Forgetting a claim is safe because ClickHouse is the truth:
    the repository lookup still finds the stored owner; the cache only saves that lookup work.
    """

    def __init__(
        self,
        *,
        ttl_seconds: float,
        max_entries: int = 1_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0 or max_entries <= 0:
            raise ValueError("ttl_seconds and max_entries must be positive")
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        # Kept in order of expiry: every write gets the same ttl from a monotonic clock and
        # moves its key to the end, so expired and oldest entries are always at the front.
        # Each entry: the holder, its expiry, and whether it was pointed at (known stored).
        self._entries: OrderedDict[EventFingerprint, tuple[Holder, float, bool]] = OrderedDict()

    def claim(self, owners: Mapping[EventFingerprint, Holder]) -> Claims:
        held: dict[EventFingerprint, Holder] = {}
        stored: list[EventFingerprint] = []
        with self._lock:
            now = self._clock()
            self._expire(now)
            for fp, holder in owners.items():
                entry = self._entries.get(fp)
                if entry is None:
                    self._write(fp, holder, now, stored=False)
                    held[fp] = holder
                else:
                    # Like SET NX: a claim that finds a holder leaves its expiry alone.
                    held[fp] = entry[0]
                    if entry[2]:
                        stored.append(fp)
        return Claims(held, stored=stored)

    def point(self, repoints: Mapping[EventFingerprint, Repoint]) -> None:
        with self._lock:
            now = self._clock()
            self._expire(now)
            for fp, repoint in repoints.items():
                entry = self._entries.get(fp)
                named = None if entry is None else entry[0].event_id
                if named in (repoint.replaces.event_id, repoint.holder.event_id):
                    self._write(fp, repoint.holder, now, stored=True)

    def ping(self) -> None:
        """Always answers: the cache is this process."""

    def close(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._entries)

    def _write(self, fp: EventFingerprint, holder: Holder, now: float, *, stored: bool) -> None:
        self._entries.pop(fp, None)
        while len(self._entries) >= self._max:
            self._entries.popitem(last=False)
        self._entries[fp] = (holder, now + self._ttl, stored)

    def _expire(self, now: float) -> None:
        while self._entries:
            _, expires_at, _ = next(iter(self._entries.values()))
            if expires_at > now:
                return
            self._entries.popitem(last=False)
