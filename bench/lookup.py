"""`make bench-lookup`: does the dedup lookup on `event_fingerprints` stay flat as it grows?

    python -m bench.lookup [--sizes 0,100k,1M,3M,10M] [--batch-size 20000] [--repeats 10]
                           [--no-optimize] [--keep] [--clickhouse-url clickhouse://127.0.0.1:9000/]

Creates a database of its own with `dedup migrate up`, grows `event_fingerprints` step by step
with server-side INSERT ... SELECT, and at each size times the worker's own lookups,
ClickHouseEventRepository.owners() and .contested(), on batches of half stored, half unknown
fingerprints. Then the lookup as the worker makes it, behind the stored filter in Redis
(refilled from the table at each size, as after a Redis loss): on the same batches, and on
batches of new fingerprints only, the common case. See bench/README.md for each figure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import secrets
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import UUID

import redis
from attrs import define, frozen
from dedup.adapters.outbound.clickhouse.event_repository import (
    LOOKUP_CHUNK,
    ClickHouseEventRepository,
)
from dedup.adapters.outbound.clickhouse.executors import ServerExecutor
from dedup.adapters.outbound.clickhouse.miniorm import Statement, ident, qualified
from dedup.adapters.outbound.clickhouse.url import ServerUrl, parse_server_url
from dedup.adapters.outbound.redis_stored_filter import RedisStoredFilter
from dedup.application.refill_stored_filter import RefillStoredFilter
from dedup.domain.event import EventId
from dedup.domain.fingerprint import EventFingerprint
from dedup.infrastructure.settings import duration

from bench.processes import clean_environment, dedup

ROOT = Path(__file__).resolve().parents[1]
TABLE = "event_fingerprints"
DEFAULT_SIZES = "0,100k,1M,3M,10M"
# Stored fingerprints are numbered 0, 1, 2 ...; a fingerprint is MD5 of "<PREFIX>fp:<n>" (16
# uniformly random bytes, as a BLAKE2b-128 digest is), computed alike by ClickHouse and here.
PREFIX = "bench-lookup:"
# Numbers from here on are never stored: the unknown half of a batch is drawn from them.
MISS_BASE = 1 << 40
# Every CONTESTED_EVERY-th fingerprint is held by two events, so contested() has work to find.
CONTESTED_EVERY = 1000
# received_at is spread over the window less a margin, so no row leaves it during the run.
WINDOW_MARGIN_S = 86_400
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
        """fingerprint -> (owner id, content): the smallest id by Python's UUID order."""
        expected = {}
        for n in self.hits:
            ids = [event_id_of(n, 1), event_id_of(n, 2)] if is_contested(n) else [event_id_of(n)]
            expected[fingerprint_of(n)] = (min(ids), content_of(n))
        return expected

    def expected_contested(self) -> dict[EventFingerprint, list[EventId]]:
        """fingerprint -> both holders' ids, smallest first, for the contested hits only."""
        return {
            fingerprint_of(n): sorted([event_id_of(n, 1), event_id_of(n, 2)])
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


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `fraction` of them at or below."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def timing(seconds: Sequence[float], *, batch_size: int) -> dict[str, Any]:
    median = percentile(seconds, 0.5) * 1000
    return {
        "median_ms": round(median, 2),
        "p90_ms": round(percentile(seconds, 0.9) * 1000, 2),
        "min_ms": round(min(seconds) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2),
        "us_per_fingerprint": round(median * 1000 / batch_size, 2),
        "runs_ms": [round(s * 1000, 2) for s in seconds],
    }


@define
class CountingExecutor(ServerExecutor):
    """The worker's ServerExecutor that also adds up what the server read for each query.

    clickhouse-driver keeps the progress the server reported for the last query; reading it
    after each query costs nothing measurable, and shows what grows with the table.
    """

    queries: int = 0
    rows_read: int = 0
    bytes_read: int = 0

    def _run(self, sql: str, params: Any = None, **kwargs: Any) -> Any:
        result = super()._run(sql, params, **kwargs)
        progress = self._driver().last_query.progress
        self.queries += 1
        self.rows_read += progress.rows
        self.bytes_read += progress.bytes
        return result

    def take(self) -> dict[str, int]:
        """The counts since the last take(), and start again from zero."""
        counts = {
            "queries": self.queries,
            "rows_read": self.rows_read,
            "bytes_read": self.bytes_read,
        }
        self.queries = self.rows_read = self.bytes_read = 0
        return counts


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

    def table(self) -> dict[str, Any]:
        """Active parts of the table as system.parts lists them, and merges under way."""
        where = f"database = '{self.database}' AND table = '{TABLE}'"
        parts, rows, partitions, size, deepest = self.sql(
            "SELECT count(), sum(rows), uniqExact(partition_id), sum(bytes_on_disk), max(level)"
            f" FROM system.parts WHERE {where} AND active"
        )[0]
        merges = self.sql(f"SELECT count() FROM system.merges WHERE {where}")[0][0]
        return {
            "parts": int(parts),
            "rows": int(rows),
            "partitions": int(partitions),
            "bytes_on_disk": int(size),
            "max_level": int(deepest),
            "merges_running": int(merges),
        }

    def optimize(self, timeout: float = 1800) -> float:
        """OPTIMIZE ... FINAL each partition until each is one part; the seconds it took.

        Asked per partition (PARTITION ID works on 18.16); an OPTIMIZE does nothing for a
        partition whose parts a background merge holds, so ask again until none has two parts.
        """
        started = time.perf_counter()
        while True:
            pending = self.sql(
                f"SELECT partition_id FROM system.parts WHERE database = '{self.database}'"
                f" AND table = '{TABLE}' AND active GROUP BY partition_id HAVING count() > 1"
            )
            if not pending:
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"OPTIMIZE FINAL: {len(pending)} partitions still unmerged")
            for (partition_id,) in pending:
                self.admin.execute(
                    Statement.text(
                        f"OPTIMIZE TABLE {qualified(self.database, TABLE)}"
                        f" PARTITION ID '{partition_id}' FINAL"
                    )
                )
            time.sleep(0.5)

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
        before = self.table()
        # The machine is shared: a high load average explains a slow or spread-out figure.
        load = [round(x, 2) for x in os.getloadavg()]
        for _ in range(self.warmup):
            self._checked(self.lookup(stored), stored, state)
        runs = [self._checked(self.lookup(stored), stored, state) for _ in range(self.repeats)]
        after = self.table()

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


# --- outputs -------------------------------------------------------------------------------


def growth(measurements: list[dict[str, Any]]) -> dict[str, Any]:
    """Per state and lookup: the median at the largest size over the smallest non-empty one."""
    result: dict[str, Any] = {}
    for state in sorted({m["state"] for m in measurements}):
        sized = [m for m in measurements if m["state"] == state and m["fingerprints"] > 0]
        if len(sized) < 2:
            continue
        first, last = sized[0], sized[-1]
        result[state] = {
            "from_fingerprints": first["fingerprints"],
            "to_fingerprints": last["fingerprints"],
            **{
                f"{kind}_median_x": round(last[kind]["median_ms"] / first[kind]["median_ms"], 2)
                for kind in ("owners", "contested", "worker", "worker_new")
            },
            "owners_rows_read_x": round(
                last["owners"]["max_per_batch"]["rows_read"]
                / max(1, first["owners"]["max_per_batch"]["rows_read"]),
                2,
            ),
        }
    return result


LABELS = {
    "owners": "owners()",
    "contested": "contested()",
    "worker": "filter + owners(), half stored",
    "worker_new": "filter + owners(), all new",
}


def charted(document: dict[str, Any]) -> bool:
    """A chart needs a non-empty table: its x-axis is logarithmic."""
    return any(m["fingerprints"] > 0 for m in document["measurements"])


def write_outputs(document: dict[str, Any], directory: Path, *, latest: bool) -> None:
    """The JSON and chart at document["paths"]; lookup-latest.* too when the run completed."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = Path(document["paths"]["json"])
    json_path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    chart = document["paths"]["chart"]
    if chart:
        write_chart(document, Path(chart))
    if latest:
        shutil.copyfile(json_path, directory / "lookup-latest.json")
        if chart:
            shutil.copyfile(chart, directory / "lookup-latest.png")


def write_chart(document: dict[str, Any], path: Path) -> None:
    """Left: lookup ms (median, bar up to p90) vs stored fingerprints. Right: what is read."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measurements = document["measurements"]
    settings = document["settings"]
    states = {"inserted": ("-", "after insert"), "optimized": ("--", "after OPTIMIZE FINAL")}
    colors = {
        "owners": "#1f6fb4",
        "contested": "#d9822b",
        "worker": "#2a9d4b",
        "worker_new": "#b42a6f",
    }
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    parts_axis = right.twinx()
    for state, (style, label) in states.items():
        points = [m for m in measurements if m["state"] == state and m["fingerprints"] > 0]
        if not points:
            continue
        xs = [m["fingerprints"] for m in points]
        for kind, color in colors.items():
            medians = [m[kind]["median_ms"] for m in points]
            above = [m[kind]["p90_ms"] - m[kind]["median_ms"] for m in points]
            left.errorbar(
                xs,
                medians,
                yerr=[[0.0] * len(above), above],
                fmt="o" + style,
                color=color,
                capsize=3,
                label=f"{LABELS[kind]} {label}",
            )
        rows_read = [m["owners"]["max_per_batch"]["rows_read"] for m in points]
        right.plot(xs, rows_read, "o" + style, color="#333333", label=f"owners() {label}")
        parts = [m["table_before"]["parts"] for m in points]
        parts_axis.plot(xs, parts, "s" + style, color="#8a3ffc", alpha=0.6, label=f"parts {label}")
    empty = [m for m in measurements if m["fingerprints"] == 0]
    if empty:
        level = empty[0]["owners"]["median_ms"]
        left.axhline(level, color="grey", linestyle=":", linewidth=1)
        left.annotate(
            "owners(), empty table",
            (0.01, level),
            xycoords=("axes fraction", "data"),
            xytext=(0, 3),
            textcoords="offset points",
            fontsize=8,
            color="grey",
        )
    sizes = sorted({m["fingerprints"] for m in measurements if m["fingerprints"] > 0})
    if sizes:
        chunks = math.ceil(settings["batch_size"] / settings["lookup_chunk"])
        whole = [chunks * rows_for(size) for size in sizes]
        right.plot(
            sizes, whole, ":", color="grey", label=f"all rows × queries per batch ({chunks})"
        )
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("stored fingerprints")
        ax.grid(True, which="both", alpha=0.3)
    left.set_ylabel(f"ms per batch of {settings['batch_size']:,} (half stored)")
    left.set_ylim(bottom=0)
    left.set_title("lookup time per batch: median, bar up to p90", fontsize=10)
    left.legend(fontsize=8)
    right.set_yscale("log")
    right.set_ylabel("rows the server read per owners() batch (max)")
    right.set_title("what grows: rows read (black), active parts (purple)", fontsize=10)
    right.legend(fontsize=8, loc="upper left")
    parts_axis.set_ylabel("active parts of event_fingerprints", color="#8a3ffc")
    parts_axis.set_ylim(bottom=0)
    parts_axis.legend(fontsize=8, loc="lower right")
    git = document["git"]
    fig.suptitle(
        f"event_fingerprints lookup {document['run_id']}: ClickHouse "
        f"{settings.get('clickhouse_version')}, {document['machine']['nproc']} cores, commit "
        f"{git['commit'][:10]}{'+dirty' if git['dirty'] else ''}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(document: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console.width = 132  # a log or a pipe: one row per line rather than 80 columns
    table = Table(title=f"event_fingerprints lookup {document['run_id']}")
    for name in (
        "fingerprints",
        "state",
        "parts",
        "merging",
        "load",
        "owners p50 / p90 ms",
        "µs/fp",
        "rows read/batch",
        "contested p50 / p90 ms",
        "filtered p50 ms: half / new",
        "searched: half / new",
        "found: owners + contested",
    ):
        table.add_column(name, justify="left" if name == "state" else "right")
    for m in document["measurements"]:
        owners, contested, parts = m["owners"], m["contested"], m["table_before"]
        found = m["check"]
        table.add_row(
            f"{m['fingerprints']:,}",
            m["state"],
            f"{parts['parts']} → {m['table_after']['parts']}",
            str(parts["merges_running"]),
            f"{m['loadavg_before'][0]:.1f}",
            f"{owners['median_ms']:,.1f} / {owners['p90_ms']:,.1f}",
            f"{owners['us_per_fingerprint']:.1f}",
            f"{owners['max_per_batch']['rows_read']:,}",
            f"{contested['median_ms']:,.1f} / {contested['p90_ms']:,.1f}",
            f"{m['worker']['median_ms']:,.1f} / {m['worker_new']['median_ms']:,.1f}",
            f"{m['worker']['max_per_batch']['searched']:,}"
            f" / {m['worker_new']['max_per_batch']['searched']:,}",
            f"{found['owners_found']:,} + {found['contested_found']}",
        )
    console.print(table)
    for insert in document["inserts"]:
        console.print(
            f"  grew to {insert['fingerprints']:,} fingerprints in {insert['insert_s']:.1f}s"
            + f", filter refilled in {insert['refill_s']:.1f}s"
            + (f", OPTIMIZE FINAL {insert['optimize_s']:.1f}s" if "optimize_s" in insert else "")
        )
    for state, figures in document["growth"].items():
        console.print(f"  growth {state}: {figures}")
    if document["error"]:
        console.print(f"[red]failed:[/] {document['error'].splitlines()[-1]}")
    console.print(f"  results: {document['paths']['json']}, chart: {document['paths']['chart']}")


# --- the run -------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.lookup", description=__doc__.split("\n")[0])
    p.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes(DEFAULT_SIZES),
        help=f"stored fingerprints at each step, ascending (default {DEFAULT_SIZES})",
    )
    p.add_argument("--batch-size", type=int, default=20_000, help="fingerprints per lookup batch")
    p.add_argument("--repeats", type=int, default=10, help="timed batches per size and state")
    p.add_argument("--warmup", type=int, default=1, help="untimed batches before those")
    p.add_argument(
        "--window",
        type=duration,
        default=duration("30d"),
        help="the dedup window (DEDUP_WINDOW), e.g. 30d",
    )
    p.add_argument(
        "--no-optimize",
        dest="optimize",
        action="store_false",
        help="skip OPTIMIZE ... FINAL and the second measurement at each size",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the batches drawn")
    p.add_argument(
        "--clickhouse-url",
        default="clickhouse://127.0.0.1:9000/",
        help="server to use; the database part is ignored (a fresh one is made)",
    )
    p.add_argument(
        "--filter-mib",
        type=int,
        default=32,
        help="stored filter size in MiB (DEDUP_FILTER_MIB); about 16 bits per fingerprint",
    )
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="for the filter")
    p.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--keep", action="store_true", help="keep the database at the end")
    return p


def run(bench: LookupBench, sizes: list[int], optimize: bool, record: dict[str, Any]) -> None:
    """Grow, measure, optimize, measure again, size by size; results land in record."""
    bench.migrate()
    record["settings"]["clickhouse_version"] = bench.version()
    stored = 0
    for size in sizes:
        insert: dict[str, Any] = {"fingerprints": size, "rows": rows_for(size)}
        insert["insert_s"] = round(bench.grow(stored, size), 2)
        stored = size
        insert["refill_s"] = round(bench.refill(), 2)
        record["inserts"].append(insert)
        say(
            f"{size:,} fingerprints stored ({insert['insert_s']:.1f}s), filter refilled"
            f" ({insert['refill_s']:.1f}s); measuring"
        )
        record["measurements"].append(bench.measure(size, "inserted"))
        if optimize and size > 0:
            insert["optimize_s"] = round(bench.optimize(), 2)
            say(f"OPTIMIZE FINAL {insert['optimize_s']:.1f}s; measuring")
            record["measurements"].append(bench.measure(size, "optimized"))


def say(text: str) -> None:
    print(f"[bench-lookup] {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    from bench.run import git, machine

    args = parser().parse_args(argv)
    if args.batch_size < 2 or args.repeats < 1 or args.warmup < 0:
        raise SystemExit("need --batch-size >= 2, --repeats >= 1, --warmup >= 0")
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    run_id = f"{stamp.lower()}_{secrets.token_hex(2)}"
    database = f"bench_lookup_{run_id}"
    server = parse_server_url(args.clickhouse_url)
    bench = LookupBench.create(server, args, database)
    record: dict[str, Any] = {
        "run_id": run_id,
        "started_at": started_at.isoformat(),
        "command": ["python", "-m", "bench.lookup", *(argv if argv is not None else sys.argv[1:])],
        "git": git(),
        "machine": {**machine(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
        "settings": {
            "sizes": args.sizes,
            "batch_size": args.batch_size,
            "stored_fraction": 0.5,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "window_seconds": bench.window_seconds,
            "received_at_spread_seconds": bench.spread,
            "contested_every": CONTESTED_EVERY,
            "lookup_chunk": LOOKUP_CHUNK,
            "filter_mib": args.filter_mib,
            "optimize": args.optimize,
            "seed": args.seed,
            "database": database,
            "server": f"{server.host}:{server.port}",
        },
        "inserts": [],
        "measurements": [],
    }
    say(f"run {run_id}: database {database} on {server.host}:{server.port}")
    error: str | None = None
    try:
        run(bench, args.sizes, args.optimize, record)
    except (Exception, KeyboardInterrupt) as exc:
        error = "".join(traceback.format_exception(exc))
        print(f"[bench-lookup] failed: {exc!r}", file=sys.stderr)
    finally:
        cleanup(bench, keep=args.keep)
    record["finished_at"] = datetime.now(UTC).isoformat()
    record["growth"] = growth(record["measurements"])
    record["error"] = error
    record["paths"] = {
        "json": str(args.results_dir / f"lookup-{stamp}.json"),
        "chart": str(args.results_dir / f"lookup-{stamp}.png") if charted(record) else None,
    }
    write_outputs(record, args.results_dir, latest=error is None)
    print_table(record)
    return 0 if error is None else 1


def cleanup(bench: LookupBench, *, keep: bool) -> None:
    try:
        if keep:
            say(f"kept database {bench.database}")
        else:
            started = time.perf_counter()
            bench.drop()
            say(f"dropped database {bench.database} ({time.perf_counter() - started:.1f}s)")
    except Exception as exc:
        print(f"[bench-lookup] cleanup failed: {exc!r}", file=sys.stderr)
    finally:
        bench.close()


if __name__ == "__main__":
    sys.exit(main())
