"""The cache and the stored filter as one batch sees them: a failure is an unknown answer.

Both are filters in front of the repository (DESIGN.md §3 step 2): a claim Redis cannot
give is the claim it would give had it lost the key, which the protocol already survives,
and a filter that cannot answer rules nothing out. So when either raises
BackendUnavailableError the batch goes on, and the repository decides every fingerprint.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from attrs import define
from dedup.application.ports import Claims, HashCache, Repoint, StoredFilter
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event, Holder
from dedup.domain.fingerprint import EventFingerprint


@define
class BatchFilters:
    """One batch's calls to the cache and the filter; `degraded` once any of them failed."""

    cache: HashCache
    seen: StoredFilter
    degraded: bool = False

    def claim(self, owners: Mapping[EventFingerprint, Holder]) -> Claims:
        """Who holds each fingerprint, or each proposed holder itself when nothing is known."""
        try:
            return self.cache.claim(owners)
        except BackendUnavailableError:
            self.degraded = True
            return Claims(owners)

    def unseen(self, fingerprints: Collection[EventFingerprint]) -> set[EventFingerprint]:
        try:
            return self.seen.unseen(fingerprints)
        except BackendUnavailableError:
            self.degraded = True
            return set()

    def add(self, events: Sequence[Event]) -> None:
        # The filter's own contract: a failed add leaves it ruling nothing out until refilled.
        try:
            self.seen.add(events)
        except BackendUnavailableError:
            self.degraded = True

    def point(self, repoints: Mapping[EventFingerprint, Repoint]) -> None:
        # Only a saving for later copies: without it they ask the repository, as after a loss.
        try:
            self.cache.point(repoints)
        except BackendUnavailableError:
            self.degraded = True
