"""`dedup serve`: the API under uvicorn."""

from __future__ import annotations

import sys

import uvicorn
from dedup.infrastructure.commands import migrate
from dedup.infrastructure.container import scheme
from dedup.infrastructure.metrics_dir import metrics_dir_of, prepare_metrics_dir
from dedup.infrastructure.settings import Settings


def serve(settings: Settings, *, host: str, port: int, workers: int) -> int:
    if workers > 1 and scheme(settings.broker_url) == "memory":
        print(
            "dedup serve: the embedded profile (DEDUP_BROKER_URL=memory://) runs one process;"
            " use --workers 1 or the distributed profile",
            file=sys.stderr,
        )
        return 2
    if scheme(settings.clickhouse) == "chdb" and migrate(settings, action="up") != 0:
        return 1  # embedded: the store is this process's own, so serving brings its schema
    if workers > 1:
        # Every process answers some scrapes of GET /metrics: they share counters through
        # files, and uvicorn's children inherit the variable that says where.
        prepare_metrics_dir(metrics_dir_of(settings.data_dir, f"serve-{port}"))
    uvicorn.run(
        "dedup.infrastructure.asgi:create_asgi_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        http="httptools",
        loop="uvloop",
        timeout_graceful_shutdown=30,
    )
    return 0
