"""The ASGI application of one API process, built from the settings and the container."""

from __future__ import annotations

import asyncio
import logging

from dedup.adapters.inbound.http.metrics_controller import metrics_route
from dedup.adapters.outbound.memory_queue import MemoryQueue
from dedup.infrastructure.app import create_app
from dedup.infrastructure.beat import crontab_of
from dedup.infrastructure.container import Container, close_clients
from dedup.infrastructure.embedded_scheduler import RetentionScheduler
from dedup.infrastructure.logs import configure_logging
from dedup.infrastructure.settings import Settings
from litestar import Litestar

log = logging.getLogger(__name__)


def build_app(container: Container) -> Litestar:
    """Wire the API; in the embedded profile the same process runs the deduplication loop."""
    settings = container.settings()
    queue = container.queue()
    probes = {
        "broker": queue.ping,
        "cache": container.hash_cache().ping,
        "database": container.event_repository().ping,
    }
    on_startup = []
    on_shutdown = []
    if isinstance(queue, MemoryQueue):
        # Embedded: no worker or beat process, so this process runs both jobs.
        scheduler = RetentionScheduler(
            schedule=crontab_of(settings.archive_schedule),
            job=lambda: container.run_retention().execute(older_than=None, dry_run=False),
            state_file=settings.data_dir / "retention-schedule",
        )
        # Opening the store at start takes its lock: no other process writes it while we serve.
        on_startup.extend([container.event_repository().ping, queue.start, scheduler.start])
        # A hook that takes an argument is given the app by Litestar: stop() must not get it.
        on_shutdown.append(lambda: scheduler.stop())  # noqa: PLW0108

        async def drain_and_stop() -> None:
            await asyncio.to_thread(queue.stop)

        on_shutdown.append(drain_and_stop)
    else:
        # Awaited on the event loop that published: it flushes and closes that loop's channel.
        on_shutdown.append(queue.aclose)
    on_shutdown.append(lambda: close_clients(container))
    return create_app(
        accept_events=container.accept_events(),
        probes=probes,
        max_body_bytes=settings.max_body_bytes,
        max_batch=settings.max_batch,
        api_keys=settings.api_keys,
        # The depth is asked of the queue at each scrape: RabbitMQ, or the in-process buffer.
        extra_route_handlers=[metrics_route(depth=queue.depth)],
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )


def create_asgi_app() -> Litestar:
    """uvicorn's factory: one call per API process, after any fork."""
    settings = Settings.load()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    return build_app(Container(settings=settings))
