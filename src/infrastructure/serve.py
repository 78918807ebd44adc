"""`dedup serve`: the API under uvicorn."""

from __future__ import annotations

import sys

import uvicorn
from dedup.adapters.inbound.http.admin_guard import is_loopback
from dedup.infrastructure.commands import migrate
from dedup.infrastructure.metrics_dir import metrics_dir_of, prepare_metrics_dir
from dedup.infrastructure.settings import Settings
from dedup.infrastructure.wiring import scheme


def anonymous_refusal(settings: Settings, host: str) -> str | None:
    """Why serving `host` with these settings is refused, or None when it is allowed."""
    if settings.api_keys or settings.allow_anonymous or is_loopback(host):
        return None
    return (
        f"dedup serve: refusing to serve {host} without write keys: anyone who reaches it could"
        " write events. Set DEDUP_API_KEYS=name=key[,name2=key2] (clients send it as"
        " X-API-Key or Authorization: Bearer; Segment's SDKs as their write key), or"
        " DEDUP_ALLOW_ANONYMOUS=true to serve without keys."
    )


def serve(settings: Settings, *, host: str, port: int, workers: int) -> int:
    refusal = anonymous_refusal(settings, host)
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2
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
    address = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    print(
        f"dedup serve: events to {address}/service-event/ (Segment's SDKs: {address}/v1),"
        f' the live page at {address}/, and `dedup query "SELECT ..."` to read the store',
        flush=True,
    )
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
