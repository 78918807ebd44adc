"""`dedup worker` and `dedup beat`: the Celery side of the distributed profile."""

from __future__ import annotations

import sys

from dedup.adapters.inbound.archive_tasks import register_archive_task
from dedup.adapters.inbound.celery_tasks import register_tasks
from dedup.adapters.metrics import start_worker_metrics_server
from dedup.infrastructure import celery_app
from dedup.infrastructure.container import opened
from dedup.infrastructure.filter_refiller import FilterRefiller
from dedup.infrastructure.logs import configure_logging
from dedup.infrastructure.settings import Settings
from dedup.infrastructure.wiring import filter_kind, scheme

# Task threads per worker process; each holds one message while it waits for its batch, so
# this bounds the messages in one flush (64 x ~30 events at 10k single requests/s).
WORKER_THREADS = 64


def _distributed(settings: Settings, command: str) -> bool:
    if scheme(settings.broker_url) == "amqp":
        return True
    print(
        f"dedup {command}: DEDUP_BROKER_URL is memory:// (embedded profile), where `dedup serve`"
        " runs the worker in-process; set DEDUP_BROKER_URL=amqp://... to run it separately",
        file=sys.stderr,
    )
    return False


def run_worker(settings: Settings, *, concurrency: int | None = None) -> int:
    """One worker process: `concurrency` task threads (default WORKER_THREADS), one flusher."""
    if not _distributed(settings, "worker"):
        return 2
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    with opened(settings) as container:
        app = container.celery_app()
        # Built once here, before any thread: a Resource opens unguarded on first use. The
        # clients connect on their first call, in the thread pool (no fork: threads pool).
        container.deduplicate_event()
        register_tasks(
            app,
            deduplicate=container.deduplicate_event,
            retry_for_seconds=settings.retry_for.total_seconds(),
            hold_seconds=settings.retry_hold.total_seconds(),
        )
        register_archive_task(app, retention=container.run_retention)
        if settings.metrics_port is not None:
            start_worker_metrics_server(settings.metrics_port)
        refiller = None
        if filter_kind(settings) == "redis":
            refiller = FilterRefiller(lambda: container.refill_stored_filter().execute())
            refiller.start()
        try:
            celery_app.run_worker(
                app, concurrency=concurrency or WORKER_THREADS, loglevel=settings.log_level
            )
        finally:
            if refiller is not None:
                refiller.stop()  # before its clients close
    return 0


def run_beat(settings: Settings) -> int:
    from dedup.infrastructure.beat import run_beat as run_celery_beat

    if not _distributed(settings, "beat"):
        return 2
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    with opened(settings) as container:
        run_celery_beat(container.celery_app(), settings, loglevel=settings.log_level)
    return 0
