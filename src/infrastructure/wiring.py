"""What the composition root wires with: URL schemes, unit conversions and lifecycles.

Every function here is handed to a provider in container.py; none builds an adapter itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from attrs import frozen
from dedup.adapters.outbound.celery_queue import CeleryQueue
from dedup.adapters.outbound.memory_queue import MemoryQueue
from dedup.application.run_retention import RunRetention
from dedup.infrastructure.embedded_scheduler import RetentionScheduler
from dedup.infrastructure.settings import Settings


def scheme(url: str) -> str:
    """The adapter family a URL asks for: `redis`, `amqp`, `clickhouse`, `chdb`, `memory`."""
    value = urlsplit(url).scheme
    aliases = {"rediss": "redis", "amqps": "amqp"}
    aliases |= {"redis+cluster": "redis", "rediss+cluster": "redis"}
    return aliases.get(value, value)


def seconds(value: timedelta) -> int:
    return int(value.total_seconds())


def migrations_folder(override: Path | None) -> Traversable:
    """DEDUP_MIGRATIONS_DIR when set, else the SQL files installed with the package."""
    return override if override is not None else resources.files("dedup.migrations")


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


def closing(client: C) -> Iterator[C]:
    """A Resource's life: the client as built, closed by shutdown_resources()."""
    try:
        yield client
    finally:
        client.close()


@frozen
class Hooks:
    """What an API process runs when it starts serving and when it stops."""

    startup: Sequence[Callable[[], object]]
    shutdown: Sequence[Callable[[], object]]
    # The probes /health/ready needs to answer ready; the others only degrade it.
    ready_needs: frozenset[str]


def embedded_hooks(
    *, queue: MemoryQueue, open_store: Callable[[], None], scheduler: RetentionScheduler
) -> Hooks:
    """Embedded: no worker or beat process, so the API process runs both jobs."""

    async def drain_and_stop() -> None:
        await asyncio.to_thread(queue.stop)

    return Hooks(
        # Opening the store at start takes its lock: no other process writes it while we serve.
        startup=[open_store, queue.start, scheduler.start],
        ready_needs=frozenset({"broker", "database"}),  # "ok" means stored here
        # Litestar hands the app to a hook that takes an argument: stop(timeout) must not get it.
        shutdown=[lambda: scheduler.stop(), drain_and_stop],  # noqa: PLW0108
    )


def distributed_hooks(*, queue: CeleryQueue) -> Hooks:
    # Awaited on the event loop that published: it flushes and closes that loop's channel.
    # "ok" means queued: only the broker is needed, ClickHouse and Redis are waited out.
    return Hooks(startup=[], shutdown=[queue.aclose], ready_needs=frozenset({"broker"}))


def retention_job(run_retention: Callable[[], RunRetention]) -> Callable[[], object]:
    return lambda: run_retention().execute(older_than=None, dry_run=False)


def filter_kind(settings: Settings) -> str:
    """`redis` when claims live in Redis and the filter has room, else `none` (no filter)."""
    return "redis" if scheme(settings.redis_url) == "redis" and settings.filter_mib else "none"
