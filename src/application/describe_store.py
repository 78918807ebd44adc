"""What the store holds now: its counts and its newest events, for the live page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from attrs import frozen
from dedup.application.ports import StoreOverview
from dedup.domain.overview import LatestEvent, StoreCounts

MAX_LATEST = 100


@frozen
class StoreDescription:
    counts: StoreCounts
    latest: tuple[LatestEvent, ...]


@frozen
class DescribeStore:
    """Counts and the newest events, looking back no further than `look_back` (a cheap read)."""

    store: StoreOverview
    clock: Callable[[], datetime]
    # The newest events are searched for in the partitions of this span only, not the table.
    look_back: timedelta = timedelta(days=1)
    preview: int = 200

    def execute(self, *, latest: int = 20) -> StoreDescription:
        limit = max(1, min(latest, MAX_LATEST))
        since = self.clock() - self.look_back
        newest = self.store.latest(since=since, limit=limit, preview=self.preview)
        return StoreDescription(counts=self.store.counts(), latest=tuple(newest))
