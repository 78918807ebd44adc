"""Where a stored filter's generation lives in Redis, and the gap that names it.

On one server a generation is one string; on a Redis Cluster it is split into `shards`
strings, each in a slot of its own and each a filter with its own state, so the filter's
memory and its traffic spread over the masters. A fingerprint's shard comes from digest bytes
the Bloom layout leaves alone (bloom.BloomLayout.locate reads bytes 0-12).
"""

from __future__ import annotations

from attrs import frozen
from dedup.adapters.outbound.bloom import Generations
from dedup.application.ports import FilterGap
from dedup.domain.fingerprint import EventFingerprint

# A filter outlives its generation by this long, then Redis lets it go.
_GRACE_SECONDS = 3600


@frozen
class GenerationGap(FilterGap):
    """A gap as this adapter reports it: the generation travels with it, never parsed back."""

    generation: int


@frozen
class GenerationKeys:
    """One generation's keys, all in one hash slot: its filter and the helpers beside it."""

    filter: str
    run: str  # the run_id of the server that set the filter's state
    lock: str  # held while one process refills the filter
    refill: str  # the bitmap a refill uploads before finishing

    @classmethod
    def of(cls, filter_key: str) -> GenerationKeys:
        return cls(
            filter=filter_key,
            run=f"{filter_key}:run",
            lock=f"{filter_key}:lock",
            refill=f"{filter_key}:refill",
        )

    @property
    def state(self) -> list[str]:
        """KEYS[1] and KEYS[2] of every script that reads or sets the state."""
        return [self.filter, self.run]


@frozen
class FilterKeys:
    """Filters at `{prefix}stored:{<window>s:<generation>}`, or `…:<generation>:<shard>}`."""

    prefix: str
    generations: Generations
    shards: int = 1

    def name(self, generation: int) -> str:
        window = int(self.generations.length.total_seconds())
        return f"{self.prefix}stored:{{{window}s:{generation}}}"

    def of(self, generation: int) -> list[GenerationKeys]:
        """The keys of each shard of the generation's filter, shard 0 first."""
        if self.shards == 1:
            return [GenerationKeys.of(self.name(generation))]
        base = self.name(generation)[:-1]  # the hash tag, open: each shard closes its own
        return [GenerationKeys.of(f"{base}:{shard}}}") for shard in range(self.shards)]

    def shard_of(self, fp: EventFingerprint) -> int:
        return int.from_bytes(fp.digest[13:16], "big") % self.shards

    def gap(self, generation: int) -> GenerationGap:
        return GenerationGap(
            name=self.name(generation),
            since=self.generations.since(generation),
            generation=generation,
        )

    def expiry(self, generation: int) -> int:
        """When the filter goes (Unix seconds): it is useless once its generation is over."""
        end = (generation + 1) * self.generations.length.total_seconds()
        return int(end) + _GRACE_SECONDS
