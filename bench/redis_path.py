"""The Redis half of a worker's batch, timed: claims, marks, the stored filter's probe and add.

    python -m bench.redis_path [--url redis://127.0.0.1:6379/0] [--batch 1000] [--repeats 100]
    python -m bench.redis_path --url redis+cluster://127.0.0.1:17101,127.0.0.1:17102/

The adapters are built from the URL as the worker builds them (one server, or a Redis
Cluster), on keys of the run's own (deleted afterwards). Each repeat is a batch of new
fingerprints: claim (all new), claim again (all held), point (the marks after the insert),
add to the filter, probe the filter. Prints the median and p90 per batch, in ms: wall
clock, and this process's CPU (`cpu`, what a busy machine disturbs least).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from dedup.adapters.outbound.redis_hash_cache import RedisHashCache
from dedup.adapters.outbound.redis_stored_filter import RedisStoredFilter
from dedup.application.ports import Repoint
from dedup.domain.event import Event, EventId, Holder
from dedup.domain.fingerprint import EventFingerprint

WINDOW = timedelta(days=30)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.redis_path", description=__doc__)
    p.add_argument("--url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--batch", type=int, default=1000, help="fingerprints per batch")
    p.add_argument("--repeats", type=int, default=100, help="timed batches")
    p.add_argument("--filter-mib", type=int, default=32, help="filter size per generation")
    return p


def main() -> None:
    args = parser().parse_args()
    prefix = f"bench:redis:{uuid.uuid4().hex[:12]}:"
    now = datetime.now(UTC)
    cache = RedisHashCache.from_url(args.url, ttl_seconds=600, prefix=prefix)
    seen = RedisStoredFilter.from_url(
        args.url, window=WINDOW, size_bytes=args.filter_mib << 20, prefix=prefix
    )
    timings: dict[str, list[float]] = {}
    try:
        for gap in seen.gaps():  # an empty filter that answers, as after a refill
            assert seen.begin(gap) and seen.finish(gap, iter([]))
        for _ in range(args.repeats + 1):
            _one_batch(cache, seen, [_event(now) for _ in range(args.batch)], timings)
    finally:
        _delete(args.url, prefix)
        cache.close()
        seen.close()
    print(f"{args.url}  batch {args.batch}  repeats {args.repeats}  filter {args.filter_mib} MiB")
    for name, values in timings.items():
        timed = values[1:]  # the first batch loads the scripts
        p90 = statistics.quantiles(timed, n=10)[-1]
        print(f"  {name:<17} median {statistics.median(timed):7.2f} ms   p90 {p90:7.2f} ms")


def _one_batch(
    cache: RedisHashCache,
    seen: RedisStoredFilter,
    events: list[Event],
    timings: dict[str, list[float]],
) -> None:
    owners = {e.fingerprint: Holder(event_id=e.event_id, content=e.content) for e in events}
    repoints = {fp: Repoint(holder=h, replaces=h) for fp, h in owners.items()}
    steps: list[tuple[str, Callable[[], object]]] = [
        ("claim new", lambda: cache.claim(owners)),
        ("claim held", lambda: cache.claim(owners)),
        ("point", lambda: cache.point(repoints)),
        ("filter add", lambda: seen.add(events)),
        ("filter probe", lambda: seen.unseen(list(owners))),
    ]
    for name, call in steps:
        began, cpu = time.perf_counter(), time.process_time()
        call()
        timings.setdefault(name, []).append((time.perf_counter() - began) * 1000)
        timings.setdefault(f"{name} cpu", []).append((time.process_time() - cpu) * 1000)


def _event(now: datetime) -> Event:
    fp = EventFingerprint(os.urandom(16))
    return Event(
        event_id=EventId(uuid.uuid4()),
        fingerprint=fp,
        content=fp,
        received_at=now,
        source="bench",
        payload="{}",
    )


def _delete(url: str, prefix: str) -> None:
    import redis
    from redis.cluster import RedisCluster

    if url.startswith("redis+cluster://"):
        host, port = url.removeprefix("redis+cluster://").split(",")[0].split(":")
        client: redis.Redis[bytes] | RedisCluster[bytes] = RedisCluster(host, int(port.rstrip("/")))
    else:
        client = redis.Redis.from_url(url)
    for key in list(client.scan_iter(match=f"{prefix}*", count=1000)):
        client.delete(key)
    client.close()


if __name__ == "__main__":
    main()
