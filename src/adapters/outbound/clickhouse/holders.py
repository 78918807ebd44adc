"""Rows of event_fingerprints -> who holds each fingerprint, and the contests among them.

The rule is the one the merge follows: the event of highest precedence stays. The rows may
repeat (unmerged parts) and come from several replicas (replicas.py): the union decides.
"""

from __future__ import annotations

from collections.abc import Iterable

from dedup.adapters.outbound.clickhouse.mappers import Row, holder_from_row, utc
from dedup.application.ports import Contender
from dedup.domain.event import EventId, Holder, precedence
from dedup.domain.fingerprint import EventFingerprint


def contenders_from_row(row: Row) -> tuple[EventFingerprint, list[Contender]]:
    """(fingerprint, [event_id], [content], [received_at]) -> contenders, the winner first."""
    fingerprint, ids, contents, moments = row
    contenders: dict[EventId, Contender] = {}
    for event_id, content, received_at in zip(ids, contents, moments, strict=True):
        contenders[EventId(event_id)] = Contender(
            event_id=EventId(event_id),
            content=EventFingerprint(content),
            received_at=utc(received_at),
        )
    # The rule the merge and owners() follow too: the highest precedence stays.
    ranked = sorted(contenders, key=precedence, reverse=True)
    return EventFingerprint(fingerprint), [contenders[key] for key in ranked]


def owners_among(rows: Iterable[Row]) -> dict[EventFingerprint, Holder]:
    """Rows of (fingerprint, event_id, content) -> the holder of each: the highest precedence.

    The event the merge keeps owns it. The rows may repeat (unmerged parts, several replicas).
    """
    best: dict[bytes, Row] = {}
    for row in rows:
        current = best.get(row[0])
        if current is None or (
            current[1] != row[1] and precedence(row[1]) > precedence(current[1])
        ):
            best[row[0]] = row
    return dict(holder_from_row(row) for row in best.values())


def held_twice(rows: Iterable[Row]) -> list[EventFingerprint]:
    """Rows of (fingerprint, event_id), from every replica -> those more than one event holds."""
    held: dict[bytes, set[object]] = {}
    for fingerprint, event_id in rows:
        held.setdefault(fingerprint, set()).add(event_id)
    return [EventFingerprint(fp) for fp, ids in held.items() if len(ids) > 1]


def contests_among(rows: Iterable[Row]) -> dict[EventFingerprint, list[Contender]]:
    """Rows of (fingerprint, event_id, content, received_at), from every replica -> contests.

    A fingerprint is contested when more than one event holds it over all the rows together.
    """
    held: dict[bytes, dict[object, Row]] = {}
    for row in rows:
        held.setdefault(row[0], {})[row[1]] = row
    found: dict[EventFingerprint, list[Contender]] = {}
    for fingerprint, by_id in held.items():
        if len(by_id) > 1:
            _, ids, contents, moments = zip(*by_id.values(), strict=True)
            key, ranked = contenders_from_row((fingerprint, ids, contents, moments))
            found[key] = ranked
    return found
