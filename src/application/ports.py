"""The ports: what the use cases need from the world, in the domain's words.

One module by the layout's rule (application/ports.py, owned by the callers), so it grows
with the ports: each is a Protocol of one to three methods and its contract, nothing else.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import NewType, Protocol

from attrs import frozen
from dedup.domain.archive import ArchivedTable, ArchiveManifest, Partition, Record, Tally
from dedup.domain.event import Event, EventId, Holder
from dedup.domain.fingerprint import EventFingerprint
from dedup.domain.outcome import Duplicate
from dedup.domain.overview import LatestEvent, StoreCounts
from dedup.domain.query import QueryLimits, QueryResult


class Claims(dict[EventFingerprint, Holder]):
    """Who holds each fingerprint now; `stored` names those whose holder is known stored."""

    def __init__(
        self,
        held: Mapping[EventFingerprint, Holder] | None = None,
        *,
        stored: Iterable[EventFingerprint] = (),
    ) -> None:
        super().__init__(held or {})
        self.stored = frozenset(stored)


@frozen
class Repoint:
    """Point a claim at `holder`, a stored event, if it still names `replaces`."""

    holder: Holder
    replaces: Holder


class HashCache(Protocol):
    """The hot part of the dedup window: who claimed each fingerprint first.

    A filter, not the truth: it may forget any claim at any time, and when it fails it
    raises BackendUnavailableError, which a caller may answer by asking the repository.
    """

    def claim(self, owners: Mapping[EventFingerprint, Holder]) -> Claims:
        """Claim each fingerprint for its holder unless held; return who holds each one now.

        A fingerprint whose claim cannot be read is returned as its own holder's (unknown).
        """
        ...

    def point(self, repoints: Mapping[EventFingerprint, Repoint]) -> None:
        """Mark each claim stored at its holder, compare-and-set: only a claim that still
        names the event it `replaces` (or the holder already, or no claim one can read) is
        re-pointed; a missing or other claim is left alone."""
        ...


class StoredFilter(Protocol):
    """In front of the repository: which fingerprints are certainly not stored (a Bloom filter)."""

    def unseen(self, fingerprints: Collection[EventFingerprint]) -> set[EventFingerprint]:
        """Those certainly not stored in the dedup window; none at all when it cannot be sure."""
        ...

    def add(self, events: Sequence[Event]) -> None:
        """Remember these events' fingerprints; call before storing them (idempotent).

        If it raises, the events may be stored anyway: the filter then rules nothing out
        until refilled (it forgets it was complete before it answers again).
        """
        ...


@frozen
class FilterGap:
    """A filter in use that cannot answer: it needs every fingerprint received since `since`."""

    name: str
    since: datetime


class FilterRefill(Protocol):
    """Bringing a stored-fingerprint filter back after it was lost (Redis flushed or restarted)."""

    def gaps(self) -> list[FilterGap]:
        """The filters in use (this generation's and the next) that cannot answer yet."""
        ...

    def begin(self, gap: FilterGap) -> bool:
        """Start a refill; False when it is complete already or another process refills it."""
        ...

    def finish(self, gap: FilterGap, fingerprints: Iterable[EventFingerprint]) -> bool:
        """Add them and let the filter answer; False if it was lost since begin() (try again)."""
        ...


class FingerprintHistory(Protocol):
    """The stored fingerprints, read back in bulk to refill a filter."""

    def received_since(self, moment: datetime) -> Iterator[EventFingerprint]:
        """Every fingerprint stored with received_at at or after the moment (repeats allowed)."""
        ...


# A moment in the store's own write order (its clock, in whole seconds), taken before a lookup.
WriteMark = NewType("WriteMark", int)


@frozen
class Contender:
    """One of several stored events that hold the same fingerprint (the race of DESIGN.md §3.4)."""

    event_id: EventId
    content: EventFingerprint
    received_at: datetime

    @property
    def holder(self) -> Holder:
        return Holder(event_id=self.event_id, content=self.content)


class EventRepository(Protocol):
    """ClickHouse, the truth: stored events, their fingerprints, recorded duplicates."""

    def owners(self, fingerprints: Collection[EventFingerprint]) -> dict[EventFingerprint, Holder]:
        """The stored owner (of highest precedence) of each fingerprint in the dedup window."""
        ...

    def mark(self) -> WriteMark:
        """Now, by the store's clock: what contested() can later limit its search to."""
        ...

    def contested(
        self, fingerprints: Collection[EventFingerprint], *, written_after: WriteMark | None = None
    ) -> dict[EventFingerprint, list[Contender]]:
        """Those fingerprints stored by more than one event, each list the winner first.

        With written_after, the search may be limited to holders written after that mark, so it
        costs what was written since rather than the whole window: pass it only for
        fingerprints that had no holder when the mark was taken.
        """
        ...

    def recorded(self, duplicates: Collection[Duplicate]) -> set[EventId]:
        """The ids among these duplicates that are recorded already."""
        ...

    def save(self, *, events: Sequence[Event], duplicates: Sequence[Duplicate]) -> None:
        """Store the events with their fingerprints, then record the duplicates.

        Raises PoisonEventError, naming the events when it can, for a content the store
        refuses (retrying cannot help), BackendUnavailableError when the store is away.
        """
        ...


class StoreOverview(Protocol):
    """A cheap look at what the store holds, for a person watching the service."""

    def counts(self) -> StoreCounts:
        """Events stored, duplicates recorded by kind (rows a merge folds may count twice)."""
        ...

    def latest(self, *, since: datetime, limit: int, preview: int) -> list[LatestEvent]:
        """The newest `limit` events received since `since`, newest first, with their copies."""
        ...


class Queue(Protocol):
    """The durable hand-off from the API to the workers."""

    async def put(self, events: Sequence[Event]) -> None:
        """Return once every event is durably queued; raise BackendUnavailableError if not.

        PoisonEventError instead for events that can never be queued or stored as they are.
        """
        ...


class StoreQuery(Protocol):
    """SQL on the store that can only read: the engine refuses anything else."""

    def run(self, sql: str, *, limits: QueryLimits) -> QueryResult:
        """Its first `limits.rows` rows; QueryRefusedError for a write, bad SQL, two statements
        or a statement past the time, BackendUnavailableError when the store is away."""
        ...


# --- archive: retention, export to files, restore (issue 4) ----------------------------------


class Archiver(Protocol):
    """Archive files: one per partition, each with a manifest beside it; never overwritten."""

    def write(self, partition: Partition, records: Iterable[Record]) -> ArchiveManifest:
        """Write the records durably under a new name (temp, fsync, rename) with a manifest."""
        ...

    def verify(self, file: Path) -> ArchiveManifest:
        """The file's manifest, once the file matches it byte for byte and row for row.

        Raises ArchiveError when the manifest is missing or anything disagrees.
        """
        ...

    def read(self, file: Path) -> Iterator[Record]:
        """The records of a file, in file order; raises ArchiveError on a bad line."""
        ...

    def archived(self, partition: Partition) -> list[ArchiveManifest]:
        """Manifests of the files written for this partition (read, not yet verified)."""
        ...

    def set_aside(self, file: Path) -> None:
        """Stop counting a file as an archive: its rows are held elsewhere. No error if gone."""
        ...


class PartitionStore(Protocol):
    """The partition side of the database: list, tally, read (folded, FINAL) and drop."""

    def partitions(self, table: ArchivedTable) -> list[Partition]:
        """Every partition of the table that holds rows, oldest first."""
        ...

    def tally(self, partition: Partition) -> Tally:
        """Rows in the partition as a read with FINAL sees them."""
        ...

    def records(self, partition: Partition) -> Iterator[Record]:
        """Every row of the partition once (FINAL), streamed."""
        ...

    def drop(self, partition: Partition) -> None:
        """Drop the partition; dropping one that is gone already is no error."""
        ...


class LateJournal(Protocol):
    """Rows written for closed days, journaled before they were stored (written_late)."""

    def unstored_late(self, table: ArchivedTable, *, before: datetime) -> list[Record]:
        """Each row journaled for a moment before `before` that the table does not hold now."""
        ...

    def put_back(self, records: Sequence[Record]) -> int:
        """Store the records whose event_id is not stored yet; return how many were stored."""
        ...

    def forget_late(self, *, written_before: datetime) -> None:
        """Forget rows journaled before the moment (by whole days: later ones may stay)."""
        ...


class RestoreTarget(Protocol):
    """Where archived rows go back to."""

    def restore(self, records: Sequence[Record]) -> int:
        """Insert the records whose event_id is not stored yet; return how many were inserted."""
        ...


class Progress(Protocol):
    """How long work reports how far it got: a terminal draws a bar, a log writes lines."""

    def begin(self, label: str, total: int) -> None:
        """A new piece of work of `total` rows starts."""
        ...

    def advance(self, rows: int) -> None: ...

    def note(self, message: str) -> None:
        """One line worth telling the operator (what was dropped, skipped, refused)."""
        ...


class Lock(Protocol):
    """Held by one process at a time, so two archive or restore runs never overlap."""

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another process holds it."""
        ...

    def release(self) -> None: ...
