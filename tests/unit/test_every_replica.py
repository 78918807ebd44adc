"""Every replica read as one (clickhouse/replicas.py): the union, and every shard answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pytest
from attrs import define, field
from dedup.adapters.outbound.clickhouse.executor import Answer
from dedup.adapters.outbound.clickhouse.holders import (
    contests_among,
    held_twice,
    owners_among,
)
from dedup.adapters.outbound.clickhouse.mappers import Row
from dedup.adapters.outbound.clickhouse.miniorm import Statement, Table
from dedup.adapters.outbound.clickhouse.replicas import EveryReplica, Replica, union_of
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import EventId, Holder, precedence
from dedup.domain.fingerprint import EventFingerprint

from tests.builders import an_event_id

S1R1, S1R2 = Replica(1, 1, "h1", 9000), Replica(1, 2, "h2", 9000)
S2R1, S2R2 = Replica(2, 1, "h3", 9000), Replica(2, 2, "h4", 9000)
LOOKUP = Statement.text("SELECT fingerprint FROM db.event_fingerprints_local")
SPLIT, ALONE = b"s" * 16, b"a" * 16
MOMENT = datetime(2026, 12, 1, tzinfo=UTC)


@define
class FakeServer:
    """An Executor that answers every query with `rows`, or is away (`up` false)."""

    rows: list[Row] = field(factory=list)
    up: bool = True
    closed: bool = False

    def query(self, statement: Statement) -> list[Row]:
        if not self.up:
            raise BackendUnavailableError("clickhouse", "connection refused")
        return list(self.rows)

    def execute(self, statement: Statement) -> None:
        raise NotImplementedError

    def insert(self, database: str, table: Table, rows: Sequence[Row]) -> None:
        raise NotImplementedError

    def read_only(self, sql: str, *, settings: Mapping[str, int | str]) -> Answer:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True


def _cluster(servers: dict[Replica, FakeServer]) -> tuple[EveryReplica, FakeServer]:
    directory = FakeServer(rows=[(r.shard, r.number, r.host, r.port) for r in servers])
    return EveryReplica(directory=directory, cluster="c", connect=servers.__getitem__), directory


def test_the_union_holds_the_rows_of_every_replica_that_answered() -> None:
    answers = {S1R1: [(b"a",)], S1R2: [(b"b",)], S2R1: None, S2R2: [(b"c",)]}
    assert sorted(union_of(answers)) == [(b"a",), (b"b",), (b"c",)]


def test_a_shard_with_no_replica_that_answered_makes_the_lookup_unavailable() -> None:
    with pytest.raises(BackendUnavailableError, match="shard 2"):
        union_of({S1R1: [(b"a",)], S1R2: None, S2R1: None, S2R2: None})


def test_a_cluster_of_no_replicas_never_answers_empty() -> None:
    with pytest.raises(BackendUnavailableError):
        union_of({})


def test_a_lookup_reads_every_replica_of_every_shard() -> None:
    servers = {
        S1R1: FakeServer(rows=[(b"old",)]),
        S1R2: FakeServer(rows=[(b"old",), (b"taken-meanwhile",)]),
        S2R1: FakeServer(up=False),
        S2R2: FakeServer(rows=[(b"other-shard",)]),
    }
    every, _ = _cluster(servers)
    rows = every.query(LOOKUP)
    assert sorted(rows) == [(b"old",), (b"old",), (b"other-shard",), (b"taken-meanwhile",)]
    servers[S2R2].up = False
    with pytest.raises(BackendUnavailableError, match="shard 2"):
        every.query(LOOKUP)
    every.close()
    assert all(server.closed for server in servers.values())


@define
class BrokenServer(FakeServer):
    """Answers with something the adapter cannot read: a fault of that one replica's answer."""

    def query(self, statement: Statement) -> list[Row]:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")


def test_a_replica_whose_answer_breaks_is_left_out_like_one_that_is_away(
    caplog: pytest.LogCaptureFixture,
) -> None:
    servers = {S1R1: BrokenServer(), S1R2: FakeServer(rows=[(b"a",)])}
    every, _ = _cluster(servers)
    assert every.query(LOOKUP) == [(b"a",)]
    assert "h1:9000 left out" in caplog.text
    every.close()


def test_the_replicas_are_listed_once_and_kept_while_the_list_cannot_be_read() -> None:
    servers = {replica: FakeServer(rows=[(replica.host,)]) for replica in (S1R1, S2R1)}
    clock = [0.0]
    every, directory = _cluster(servers)
    every.monotonic = lambda: clock[0]
    assert sorted(every.query(LOOKUP)) == [("h1",), ("h3",)]
    directory.up = False
    clock[0] += every.list_seconds  # time to list again, and the server that lists is away
    assert sorted(every.query(LOOKUP)) == [("h1",), ("h3",)]


def test_contenders_are_merged_across_replicas_once_each_the_winner_first() -> None:
    one, other, third = an_event_id(), an_event_id(), an_event_id()

    def row(fp: bytes, event_id: EventId) -> Row:
        return (fp, event_id, event_id.bytes, MOMENT)

    rows = [
        row(SPLIT, one),  # one replica holds one event of the race ...
        row(SPLIT, other),  # ... its neighbour the other, not fetched yet
        row(SPLIT, one),  # a replica that has both
        row(SPLIT, other),
        row(ALONE, third),
        row(ALONE, third),  # the same event on both replicas: no contest
    ]
    found = contests_among(rows)
    assert list(found) == [EventFingerprint(SPLIT)]
    [ranked] = found.values()
    assert [c.event_id for c in ranked] == sorted([one, other], key=precedence, reverse=True)


def test_the_holder_over_every_replica_is_the_event_of_highest_precedence() -> None:
    one, other = an_event_id(), an_event_id()
    winner = max(one, other, key=precedence)
    rows = [(SPLIT, one, one.bytes), (SPLIT, other, other.bytes), (ALONE, one, one.bytes)] * 2
    owners = owners_among(rows)
    assert owners == {
        EventFingerprint(SPLIT): Holder(event_id=winner, content=EventFingerprint(winner.bytes)),
        EventFingerprint(ALONE): Holder(event_id=one, content=EventFingerprint(one.bytes)),
    }


def test_a_fingerprint_is_held_twice_when_two_replicas_hold_two_events_for_it() -> None:
    rows = [(SPLIT, "one"), (SPLIT, "other"), (ALONE, "third"), (ALONE, "third")]
    assert held_twice(rows) == [EventFingerprint(SPLIT)]
