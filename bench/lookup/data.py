"""The benchmark's stored fingerprints: numbered, computed alike by ClickHouse and here.

Fingerprint n, its holders' ids and its content are functions of n, so a batch of numbers
knows its own right answer: what owners() and contested() must return for it.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from typing import Any
from uuid import UUID

from attrs import frozen
from dedup.adapters.outbound.clickhouse.miniorm import qualified
from dedup.domain.event import EventId, precedence
from dedup.domain.fingerprint import EventFingerprint

TABLE = "event_fingerprints"
# Stored fingerprints are numbered 0, 1, 2 ...; a fingerprint is MD5 of "<PREFIX>fp:<n>" (16
# uniformly random bytes, as a BLAKE2b-128 digest is), computed alike by ClickHouse and here.
PREFIX = "bench-lookup:"
# Numbers from here on are never stored: the unknown half of a batch is drawn from them.
MISS_BASE = 1 << 40
# Every CONTESTED_EVERY-th fingerprint is held by two events, so contested() has work to find.
CONTESTED_EVERY = 1000
_SUFFIXES = {"": 1, "k": 1_000, "m": 1_000_000}


def parse_count(text: str) -> int:
    """`0`, `2500`, `100k`, `1M`, `2.5M` -> a non-negative whole number."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if not match:
        raise ValueError(f"expected a count like 100k or 1M, got {text!r}")
    value = float(match.group(1)) * _SUFFIXES[match.group(2).lower()]
    if value != int(value):
        raise ValueError(f"not a whole number: {text!r}")
    return int(value)


def parse_sizes(text: str) -> list[int]:
    """A comma list of table sizes, ascending and distinct: the table only grows."""
    sizes = [parse_count(part) for part in text.split(",") if part.strip()]
    if not sizes or sizes != sorted(set(sizes)):
        raise ValueError(f"expected distinct ascending sizes, got {text!r}")
    if sizes[-1] >= MISS_BASE:
        raise ValueError(f"sizes must stay below {MISS_BASE:,}")
    return sizes


def _md5(text: str) -> bytes:
    return hashlib.md5(text.encode(), usedforsecurity=False).digest()


def fingerprint_of(n: int) -> EventFingerprint:
    return EventFingerprint(_md5(f"{PREFIX}fp:{n}"))


def content_of(n: int) -> EventFingerprint:
    return EventFingerprint(_md5(f"{PREFIX}content:{n}"))


def event_id_of(n: int, copy: int = 1) -> EventId:
    """The id of the copy-th event holding fingerprint n (copy 2 only for contested ones)."""
    return EventId(UUID(bytes=_md5(f"{PREFIX}id{copy}:{n}")))


def is_contested(n: int) -> bool:
    return n % CONTESTED_EVERY == 0


def insert_sql(database: str, start: int, stop: int, *, anchor: int, spread: int) -> str:
    """Rows for fingerprints [start, stop), the same expressions as the functions above.

    ClickHouse 18.16 SQL: MD5 is FixedString(16); a UUID is made from 16 bytes through its text;
    arrayJoin adds the second holder of a contested fingerprint; received_at falls in
    (anchor - spread, anchor], spread by a hash of n, so over ~5 weekly partitions.
    """
    return (
        f"INSERT INTO {qualified(database, TABLE)}"
        " (fingerprint, event_id, content, received_at)"
        f" SELECT MD5(concat('{PREFIX}fp:', toString(n))),"
        f" toUUID(UUIDNumToString(MD5(concat('{PREFIX}id', toString(copy), ':', toString(n))))),"
        f" MD5(concat('{PREFIX}content:', toString(n))),"
        f" toDateTime(toUInt32({anchor}) - intHash32(n) % {spread})"
        " FROM (SELECT number AS n,"
        f" arrayJoin(if(number % {CONTESTED_EVERY} = 0, [1, 2], [1])) AS copy"
        f" FROM numbers({start}, {stop - start}))"
    )


def rows_for(fingerprints: int) -> int:
    """Rows that many stored fingerprints take: contested ones are held twice."""
    return fingerprints + math.ceil(fingerprints / CONTESTED_EVERY)


@frozen
class Batch:
    """A lookup batch: numbers of stored fingerprints (hits) and of never-stored ones (misses)."""

    hits: tuple[int, ...]
    misses: tuple[int, ...]

    @classmethod
    def draw(cls, rng: random.Random, *, stored: int, size: int) -> Batch:
        """Half of size from the stored fingerprints (fewer if fewer are stored), rest unknown."""
        hits = rng.sample(range(stored), min(size // 2, stored))
        misses = rng.sample(range(MISS_BASE, 2 * MISS_BASE), size - len(hits))
        return cls(tuple(hits), tuple(misses))

    def fingerprints(self, rng: random.Random) -> list[EventFingerprint]:
        """Every fingerprint of the batch, hits and misses shuffled together."""
        numbers = [*self.hits, *self.misses]
        rng.shuffle(numbers)
        return [fingerprint_of(n) for n in numbers]

    def expected_owners(self) -> dict[EventFingerprint, tuple[EventId, EventFingerprint]]:
        """fingerprint -> (owner id, content): the id of highest precedence."""
        expected = {}
        for n in self.hits:
            ids = [event_id_of(n, 1), event_id_of(n, 2)] if is_contested(n) else [event_id_of(n)]
            expected[fingerprint_of(n)] = (max(ids, key=precedence), content_of(n))
        return expected

    def expected_contested(self) -> dict[EventFingerprint, list[EventId]]:
        """fingerprint -> both holders' ids, the winner first, for the contested hits only."""
        return {
            fingerprint_of(n): sorted(
                [event_id_of(n, 1), event_id_of(n, 2)], key=precedence, reverse=True
            )
            for n in self.hits
            if is_contested(n)
        }


def verify(batch: Batch, owners: dict[Any, Any], contested: dict[Any, Any]) -> dict[str, Any]:
    """Did the lookups find exactly the stored half, with the right owners and contenders?"""
    found = {fp: (holder.event_id, holder.content) for fp, holder in owners.items()}
    contenders = {fp: [c.event_id for c in cs] for fp, cs in contested.items()}
    expected_contested = batch.expected_contested()
    return {
        "hits": len(batch.hits),
        "misses": len(batch.misses),
        "owners_found": len(found),
        "owners_exact": found == batch.expected_owners(),
        "contested_expected": len(expected_contested),
        "contested_found": len(contenders),
        "contested_exact": contenders == expected_contested,
    }
