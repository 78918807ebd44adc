"""The accounting invariant of DESIGN.md §3, checked by name against what is stored.

Every event answered "ok" is, once the queue is drained, exactly one row in `events` (FINAL) or
exactly one row in `event_duplicates` (FINAL) whose original — following chains, since a copy
may have been recorded against a race's loser before the race was settled — is a row in
`events`. No fingerprint is stored twice; no event is lost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from uuid import UUID

from attrs import frozen
from dedup.adapters.outbound.clickhouse.inspector import ClickHouseInspector
from dedup.adapters.outbound.clickhouse.url import server_executor_from_url
from dedup.domain.event import Event
from dedup.domain.outcome import Duplicate

from tests.servers import CLICKHOUSE_URL

MAX_CHAIN = 16  # a longer chain means a cycle or a bug, not a race


@frozen
class Ledger:
    """What is stored, read exactly: events and duplicates as reads with FINAL see them."""

    events: tuple[tuple[UUID, bytes], ...]  # (event_id, fingerprint)
    duplicates: tuple[tuple[UUID, UUID], ...]  # (event_id, original_event_id)

    @classmethod
    def of(cls, events: Iterable[Event], duplicates: Iterable[Duplicate]) -> Ledger:
        return cls(
            events=tuple((e.event_id, e.fingerprint.digest) for e in events),
            duplicates=tuple((d.event_id, d.original_event_id) for d in duplicates),
        )

    @classmethod
    def from_clickhouse(
        cls, database: str, *, url: str = CLICKHOUSE_URL, cluster: str | None = None
    ) -> Ledger:
        """Read through the Distributed tables on a cluster, as the writer reads (in order)."""
        executor = server_executor_from_url(url, cluster=cluster)
        try:
            inspector = ClickHouseInspector(executor=executor, database=database)
            return cls.of(inspector.events(), inspector.duplicates())
        finally:
            executor.close()

    @classmethod
    def from_fake(cls, repo: object) -> Ledger:
        """From tests.fakes.FakeEventRepository: its folded events and its duplicates."""
        return cls.of(repo.final(), repo.duplicates)  # type: ignore[attr-defined]


@frozen
class Accounting:
    """What the check found: how the ok'd events are accounted for."""

    ok: int
    stored: int  # ok'd ids that are rows of events
    recorded: int  # ok'd ids that are rows of event_duplicates
    chained: int  # duplicates whose original is itself a duplicate
    unasked: int  # stored rows nobody was told "ok" about (a request that failed after queueing)


def resolve(event_id: UUID, originals: dict[UUID, UUID], stored: set[UUID]) -> UUID | None:
    """The stored event a duplicate finally points at, or None if the chain ends nowhere."""
    current = event_id
    for _ in range(MAX_CHAIN):
        if current in stored:
            return current
        if current not in originals:
            return None
        current = originals[current]
    return None


def assert_accounting_invariant(ok_ids: Collection[UUID], ledger: Ledger) -> Accounting:
    """Fail naming the first ids that break the invariant; return the tally when it holds."""
    event_ids = Counter(event_id for event_id, _fp in ledger.events)
    fingerprints = Counter(fp for _event_id, fp in ledger.events)
    duplicate_ids = Counter(event_id for event_id, _original in ledger.duplicates)
    originals = dict(ledger.duplicates)
    stored = set(event_ids)

    problems: list[str] = []

    def note(what: str, ids: Collection[object]) -> None:
        if ids:
            sample = ", ".join(str(i) for i in list(ids)[:5])
            problems.append(f"{len(ids)} {what}: {sample}")

    note(
        "fingerprints stored twice in events", [fp.hex() for fp, n in fingerprints.items() if n > 1]
    )
    note("event ids twice in events", [i for i, n in event_ids.items() if n > 1])
    note("event ids twice in event_duplicates", [i for i, n in duplicate_ids.items() if n > 1])
    note("ids both stored and recorded as duplicates", stored & set(duplicate_ids))
    note(
        "duplicates whose original resolves to no stored event",
        [i for i in duplicate_ids if resolve(i, originals, stored) is None],
    )
    ok = set(ok_ids)
    note("ok'd events lost (in neither table)", ok - stored - set(duplicate_ids))
    if problems:
        raise AssertionError("accounting invariant broken:\n  " + "\n  ".join(problems))
    return Accounting(
        ok=len(ok),
        stored=len(ok & stored),
        recorded=len(ok & set(duplicate_ids)),
        chained=sum(1 for original in originals.values() if original not in stored),
        unasked=len(stored - ok),
    )
