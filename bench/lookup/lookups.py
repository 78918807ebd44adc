"""The measured lookups: the run's database grown step by step, and the worker's lookups on it."""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis
from attrs import define
from dedup.adapters.outbound.clickhouse.event_repository import ClickHouseEventRepository
from dedup.adapters.outbound.clickhouse.miniorm import Statement, ident
from dedup.adapters.outbound.clickhouse.server_executor import ServerExecutor
from dedup.adapters.outbound.clickhouse.url import ServerUrl
from dedup.adapters.outbound.redis_stored_filter import RedisStoredFilter
from dedup.application.refill_stored_filter import RefillStoredFilter
from dedup.domain.fingerprint import EventFingerprint

from bench.lookup.counting_executor import CountingExecutor
from bench.lookup.data import Batch, insert_sql, verify
from bench.lookup.figures import timing
from bench.lookup.table import table_state
from bench.processes import clean_environment, dedup

# received_at is spread over the window less a margin, so no row leaves it during the run.
WINDOW_MARGIN_S = 86_400


def _url(server: ServerUrl, database: str) -> str:
    user = quote(server.user, safe="")
    password = quote(server.password, safe="")
    return f"clickhouse://{user}:{password}@{server.host}:{server.port}/{database}"


@define
class LookupBench:
    """The run's database, the admin connection, and the repository the worker would use."""

    server: ServerUrl
    database: str
    window_seconds: int
    batch_size: int
    repeats: int
    warmup: int
    rng: random.Random
    admin: ServerExecutor
    counting: CountingExecutor
    repository: ClickHouseEventRepository
    anchor: int  # received_at of the newest row: the run's start, in Unix seconds
    redis: redis.Redis[bytes]
    seen: RedisStoredFilter  # the worker's stored filter, on keys of the run's own
    redis_prefix: str

    @classmethod
    def create(cls, server: ServerUrl, args: argparse.Namespace, database: str) -> LookupBench:
        login = (server.host, server.port, server.user, server.password)
        counting = CountingExecutor(*login)
        window = int(args.window.total_seconds())
        return cls(
            server=server,
            database=database,
            window_seconds=window,
            batch_size=args.batch_size,
            repeats=args.repeats,
            warmup=args.warmup,
            rng=random.Random(args.seed),
            admin=ServerExecutor(*login),
            counting=counting,
            repository=ClickHouseEventRepository(
                executor=counting, database=database, window_seconds=window
            ),
            anchor=(anchor := int(time.time())),
            redis=(client := redis.Redis.from_url(args.redis_url, socket_timeout=120)),
            seen=RedisStoredFilter(
                client,
                window=args.window,
                size_bytes=args.filter_mib << 20,
                prefix=f"{database}:",
                clock=lambda: datetime.fromtimestamp(anchor, UTC),
            ),
            redis_prefix=f"{database}:",
        )

    @property
    def spread(self) -> int:
        return max(1, self.window_seconds - WINDOW_MARGIN_S)

    def migrate(self) -> None:
        """`dedup migrate up` against the run's database, in an empty directory (no .env)."""
        env = clean_environment(DEDUP_CLICKHOUSE_URL=_url(self.server, self.database))
        with tempfile.TemporaryDirectory(prefix="dedup-bench-lookup-") as cwd:
            dedup("migrate", "up", env=env, cwd=Path(cwd))

    def sql(self, text: str) -> list[Any]:
        return self.admin.query(Statement.text(text))

    def version(self) -> str:
        return str(self.sql("SELECT version()")[0][0])

    def grow(self, start: int, stop: int) -> float:
        """Store fingerprints [start, stop); the seconds the INSERT ... SELECT took."""
        started = time.perf_counter()
        if stop > start:
            sql = insert_sql(self.database, start, stop, anchor=self.anchor, spread=self.spread)
            self.admin.execute(Statement.text(sql))
        return time.perf_counter() - started

    def refill(self) -> float:
        """Lose the stored filter and refill it from the table, as after a Redis loss."""
        self.forget_filter()
        started = time.perf_counter()
        done = RefillStoredFilter(
            refill=self.seen,
            history=self.repository,
            settle=timedelta(0),
            sleep=lambda _seconds: None,
        ).execute()
        if len(done) != 2:
            raise AssertionError(f"refilled {len(done)} of the 2 filters in use")
        return time.perf_counter() - started

    def forget_filter(self) -> None:
        keys = list(self.redis.scan_iter(match=f"{self.redis_prefix}*", count=1000))
        if keys:
            self.redis.delete(*keys)

    def filtered(
        self, fingerprints: list[EventFingerprint]
    ) -> tuple[float, dict[str, int], dict[Any, Any], int]:
        """The worker's lookup: the filter, then owners() of what it could not rule out."""
        self.counting.take()
        started = time.perf_counter()
        unseen = self.seen.unseen(fingerprints)
        rest = [fp for fp in fingerprints if fp not in unseen]
        owners = self.repository.owners(rest)
        return time.perf_counter() - started, self.counting.take(), owners, len(rest)

    def lookup(self, stored: int) -> dict[str, Any]:
        """One batch: owners() then contested(), timed, with what the server read, checked.

        Then the same batch through the stored filter, which must find the same owners, and
        a batch of new fingerprints only, which must find none.
        """
        batch = Batch.draw(self.rng, stored=stored, size=self.batch_size)
        fingerprints = batch.fingerprints(self.rng)
        self.counting.take()
        started = time.perf_counter()
        owners = self.repository.owners(fingerprints)
        owners_s = time.perf_counter() - started
        owners_read = self.counting.take()
        started = time.perf_counter()
        contested = self.repository.contested(fingerprints)
        contested_s = time.perf_counter() - started
        contested_read = self.counting.take()
        worker_s, worker_read, worker_owners, searched = self.filtered(fingerprints)
        new = Batch.draw(self.rng, stored=0, size=self.batch_size).fingerprints(self.rng)
        new_s, new_read, new_owners, new_searched = self.filtered(new)
        return {
            "owners_s": owners_s,
            "contested_s": contested_s,
            "worker_s": worker_s,
            "worker_new_s": new_s,
            "owners_read": owners_read,
            "contested_read": contested_read,
            "worker_read": {**worker_read, "searched": searched},
            "worker_new_read": {**new_read, "searched": new_searched},
            "check": {
                **verify(batch, owners, contested),
                "worker_exact": worker_owners == owners,
                "worker_new_empty": new_owners == {},
            },
        }

    def measure(self, stored: int, state: str) -> dict[str, Any]:
        """Warm-up batches, then `repeats` timed ones, each a fresh draw; all must check out."""
        before = table_state(self.admin, self.database)
        # The machine is shared: a high load average explains a slow or spread-out figure.
        load = [round(x, 2) for x in os.getloadavg()]
        for _ in range(self.warmup):
            self._checked(self.lookup(stored), stored, state)
        runs = [self._checked(self.lookup(stored), stored, state) for _ in range(self.repeats)]
        after = table_state(self.admin, self.database)

        def reads(key: str) -> dict[str, int]:
            return {name: max(run[key][name] for run in runs) for name in runs[0][key]}

        return {
            "fingerprints": stored,
            "state": state,
            "table_before": before,
            "table_after": after,
            "loadavg_before": load,
            "owners": {
                **timing([r["owners_s"] for r in runs], batch_size=self.batch_size),
                "max_per_batch": reads("owners_read"),
            },
            "contested": {
                **timing([r["contested_s"] for r in runs], batch_size=self.batch_size),
                "max_per_batch": reads("contested_read"),
            },
            "worker": {
                **timing([r["worker_s"] for r in runs], batch_size=self.batch_size),
                "max_per_batch": reads("worker_read"),
            },
            "worker_new": {
                **timing([r["worker_new_s"] for r in runs], batch_size=self.batch_size),
                "max_per_batch": reads("worker_new_read"),
            },
            "check": runs[-1]["check"],
            "checked_batches": self.warmup + self.repeats,
        }

    @staticmethod
    def _checked(run: dict[str, Any], stored: int, state: str) -> dict[str, Any]:
        result = run["check"]
        exact = ("owners_exact", "contested_exact", "worker_exact", "worker_new_empty")
        if not all(result[name] for name in exact):
            raise AssertionError(
                f"wrong lookup result at {stored:,} fingerprints ({state}): {result}"
            )
        return run

    def drop(self) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {ident(self.database)}")

    def close(self) -> None:
        self.forget_filter()
        self.counting.close()
        self.admin.close()
        self.redis.close()
