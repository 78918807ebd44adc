"""Every replica of a cluster, read as one: what any replica of a shard holds is seen.

A lookup through a Distributed table reads one replica per shard, and a replica back from an
outage answers while it still fetches what its neighbour took meanwhile. The lookups that
decide exactly-once read every replica instead, each over its own connection, and take the
union. A replica that does not answer is left out while its shard has another that did.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Self

from attrs import define, field, frozen
from dedup.adapters.outbound.clickhouse.executor import BACKEND, Executor
from dedup.adapters.outbound.clickhouse.mappers import Row
from dedup.adapters.outbound.clickhouse.miniorm import Statement, eq, select
from dedup.adapters.outbound.clickhouse.server_executor import ServerExecutor
from dedup.adapters.outbound.clickhouse.tables import SYSTEM_CLUSTERS
from dedup.adapters.outbound.clickhouse.url import parse_server_url, server_executor_from_url
from dedup.domain.errors import BackendUnavailableError

_log = logging.getLogger(__name__)

# How long the list of replicas is trusted before it is read again.
LIST_SECONDS = 300.0
# Servers of one cluster answer a connect in milliseconds: a replica that takes longer is
# left out rather than holding up every lookup of the batch.
CONNECT_TIMEOUT_S = 1.0
# A replica that answers nothing for this long (hung, paused) is left out of the lookup, as
# one that refuses; the driver's default would hold every batch for five minutes.
RECEIVE_TIMEOUT_S = 30.0


@frozen
class Replica:
    shard: int
    number: int
    host: str
    port: int


def replica_from_row(row: Row) -> Replica:
    shard, number, host, port = row
    return Replica(shard=int(shard), number=int(number), host=str(host), port=int(port))


def union_of(answers: Mapping[Replica, Sequence[Row] | None]) -> list[Row]:
    """Every row the replicas answered (None: no answer); unavailable if a shard gave none."""
    answered = {replica.shard for replica, rows in answers.items() if rows is not None}
    silent = sorted({replica.shard for replica in answers} - answered)
    if silent or not answers:
        shards = ", ".join(map(str, silent)) or "any"
        raise BackendUnavailableError(BACKEND, f"no replica of shard {shards} answered")
    return [row for rows in answers.values() if rows is not None for row in rows]


def _answer(replica: Replica, executor: Executor, statement: Statement) -> list[Row] | None:
    """The replica's rows; None, logged, when it gave none (away, or an answer that broke)."""
    try:
        return executor.query(statement)
    except BackendUnavailableError as away:
        _log.debug("replica %s:%d left out: %s", replica.host, replica.port, away)
    except Exception:
        _log.exception("replica %s:%d left out: its answer failed", replica.host, replica.port)
    return None


@define
class EveryReplica:
    """Every replica of `cluster` as system.clusters lists it, each read over its own connection."""

    directory: Executor  # any server of the cluster: where system.clusters is read
    cluster: str
    connect: Callable[[Replica], Executor]
    threads: int = 8
    list_seconds: float = LIST_SECONDS
    monotonic: Callable[[], float] = time.monotonic
    _executors: dict[Replica, Executor] = field(factory=dict, init=False)
    _listed_at: float | None = field(default=None, init=False)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False)
    _lock: threading.Lock = field(factory=threading.Lock, init=False)

    @classmethod
    def from_url(cls, url: str, *, cluster: str) -> Self:
        """The URL's servers find the replicas; each is read with the URL's user and password."""
        server = parse_server_url(url)

        def connect(replica: Replica) -> Executor:
            return ServerExecutor(
                host=replica.host,
                port=replica.port,
                user=server.user,
                password=server.password,
                connect_timeout=CONNECT_TIMEOUT_S,
                receive_timeout=RECEIVE_TIMEOUT_S,
            )

        return cls(directory=server_executor_from_url(url), cluster=cluster, connect=connect)

    def query(self, statement: Statement) -> list[Row]:
        """The rows of every replica that answers; BackendUnavailableError if a shard is silent."""
        executors, pool = self._current()
        futures = {
            replica: pool.submit(_answer, replica, executor, statement)
            for replica, executor in executors.items()
        }
        return union_of({replica: future.result() for replica, future in futures.items()})

    def _current(self) -> tuple[dict[Replica, Executor], ThreadPoolExecutor]:
        with self._lock:
            now = self.monotonic()
            if self._listed_at is None or now - self._listed_at >= self.list_seconds:
                self._relist()
                self._listed_at = now
            if self._pool is None:  # on first use: after a worker forked, never before
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="replica")
            return dict(self._executors), self._pool

    def _relist(self) -> None:
        clusters = SYSTEM_CLUSTERS
        query = select("system", clusters, "shard_num", "replica_num", "host_name", "port")
        try:
            rows = self.directory.query(
                query.where(eq(clusters["cluster"], self.cluster)).statement()
            )
        except BackendUnavailableError:
            if self._executors:
                return  # the replicas known still answer for themselves
            raise
        listed = {replica_from_row(row) for row in rows}
        if not listed:
            raise BackendUnavailableError(
                BACKEND, f"no cluster {self.cluster!r} in system.clusters"
            )
        for gone in set(self._executors) - listed:
            self._executors.pop(gone).close()
        for replica in sorted(listed - set(self._executors), key=lambda r: (r.shard, r.number)):
            self._executors[replica] = self.connect(replica)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            for executor in self._executors.values():
                executor.close()
            self._executors.clear()
            self._listed_at = None
            self.directory.close()
