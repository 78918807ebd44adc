"""The StoredFilter that rules nothing out: every lookup goes to the repository.

For the embedded profile (one process, chDB, small histories) and for DEDUP_FILTER_BYTES=0.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from dedup.application.ports import StoredFilter
from dedup.domain.event import Event
from dedup.domain.fingerprint import EventFingerprint


class NoStoredFilter(StoredFilter):
    def unseen(self, fingerprints: Collection[EventFingerprint]) -> set[EventFingerprint]:
        return set()

    def add(self, events: Sequence[Event]) -> None:
        pass
