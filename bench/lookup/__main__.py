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
import os
import secrets
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dedup.adapters.outbound.clickhouse.event_repository import LOOKUP_CHUNK
from dedup.adapters.outbound.clickhouse.url import parse_server_url
from dedup.infrastructure.settings import duration

from bench.lookup.data import CONTESTED_EVERY, parse_sizes, rows_for
from bench.lookup.figures import growth
from bench.lookup.lookups import LookupBench
from bench.lookup.report import charted, print_table, write_outputs
from bench.lookup.table import optimize_final

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SIZES = "0,100k,1M,3M,10M"


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
            insert["optimize_s"] = round(optimize_final(bench.admin, bench.database), 2)
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
