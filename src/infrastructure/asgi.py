"""The ASGI application of one API process, built from the settings and the container."""

from __future__ import annotations

from dedup.adapters.inbound.http.admin_guard import admin_only
from dedup.adapters.inbound.http.live_page_controller import live_page_router
from dedup.adapters.inbound.http.metrics_controller import metrics_route
from dedup.infrastructure.app import create_app
from dedup.infrastructure.container import Container, close_resources
from dedup.infrastructure.logs import configure_logging
from dedup.infrastructure.settings import Settings
from litestar import Litestar


def build_app(container: Container) -> Litestar:
    """Wire the API; in the embedded profile the same process runs the deduplication loop."""
    settings = container.settings()
    queue = container.queue()
    hooks = container.api_hooks()
    return create_app(
        accept_events=container.accept_events(),
        probes={
            "broker": queue.ping,
            "cache": container.hash_cache().ping,
            "database": container.event_repository().ping,
        },
        max_body_bytes=settings.max_body_bytes,
        max_batch=settings.max_batch,
        api_keys=settings.api_keys,
        cors_origins=settings.cors_origins,
        run_query=container.run_query(),
        admin_key=settings.admin_key,
        # The depth is asked of the queue at each scrape: RabbitMQ, or the in-process buffer.
        extra_route_handlers=[
            metrics_route(depth=queue.depth),
            live_page_router(
                describe_store=container.describe_store(),
                queue_depth=queue.depth,
                guard=admin_only,
            ),
        ],
        ready_needs=hooks.ready_needs,
        on_startup=hooks.startup,
        # The clients go last, once the queue has flushed what it holds.
        on_shutdown=[*hooks.shutdown, lambda: close_resources(container)],
    )


def create_asgi_app() -> Litestar:
    """uvicorn's factory: one call per API process, after any fork."""
    settings = Settings.load()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    return build_app(Container(settings=settings))
