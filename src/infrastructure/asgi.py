"""The ASGI application of one API process, built from the settings and the container."""

from __future__ import annotations

import asyncio
import logging

from litestar import Litestar

from adapters.inbound.http.metrics_controller import metrics_route
from adapters.outbound.memory_queue import MemoryQueue
from infrastructure.app import create_app
from infrastructure.beat import crontab_of
from infrastructure.container import Container, close_clients
from infrastructure.embedded_scheduler import RetentionScheduler
from infrastructure.logs import configure_logging
from infrastructure.settings import Settings

log = logging.getLogger(__name__)


class DeadLetterReplays:
    """Embedded: dead letters live in this process, so it puts them back itself, each minute."""

    def __init__(self, queue: MemoryQueue, *, every: float = 60.0) -> None:
        self._queue = queue
        self._every = every
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            if self._queue.dead_letters:
                count = self._queue.replay_dead()
                log.warning("replayed %d dead-lettered events", count)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


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
        on_shutdown.append(scheduler.stop)
        replays = DeadLetterReplays(queue)
        on_startup.append(replays.start)
        on_shutdown.append(replays.stop)

        async def drain_and_stop() -> None:
            await asyncio.to_thread(queue.stop)

        on_shutdown.append(drain_and_stop)
    else:
        on_shutdown.append(queue.close)
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
