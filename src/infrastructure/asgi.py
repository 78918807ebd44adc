"""The ASGI application of one API process, built from the settings and the container."""

from __future__ import annotations

import asyncio

from litestar import Litestar

from adapters.outbound.memory_queue import MemoryQueue
from infrastructure.app import create_app
from infrastructure.container import Container, close_clients
from infrastructure.logs import configure_logging
from infrastructure.settings import Settings


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
        on_startup.append(queue.start)

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
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )


def create_asgi_app() -> Litestar:
    """uvicorn's factory: one call per API process, after any fork."""
    settings = Settings.load()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    return build_app(Container(settings=settings))
