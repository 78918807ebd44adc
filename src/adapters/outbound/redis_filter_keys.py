"""Where a stored filter's generation lives in Redis, and the gap that names it."""

from __future__ import annotations

from attrs import frozen
from dedup.adapters.outbound.bloom import Generations
from dedup.application.ports import FilterGap

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
    """Filters at `{prefix}stored:{<window>s:<generation>}`."""

    prefix: str
    generations: Generations

    def of(self, generation: int) -> GenerationKeys:
        window = int(self.generations.length.total_seconds())
        return GenerationKeys.of(f"{self.prefix}stored:{{{window}s:{generation}}}")

    def gap(self, generation: int) -> GenerationGap:
        return GenerationGap(
            name=self.of(generation).filter,
            since=self.generations.since(generation),
            generation=generation,
        )

    def expiry(self, generation: int) -> int:
        """When the filter goes (Unix seconds): it is useless once its generation is over."""
        end = (generation + 1) * self.generations.length.total_seconds()
        return int(end) + _GRACE_SECONDS
