"""GET /metrics: the Prometheus scrape of the API, with the queue depth asked at scrape time."""

from __future__ import annotations

from dedup.adapters.metrics import DepthProbe, render
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

# Litestar adds "; charset=utf-8" to a text type itself.
MEDIA_TYPE = "text/plain; version=0.0.4"


def metrics_route(depth: DepthProbe | None = None) -> HTTPRouteHandler:
    """The GET /metrics handler; `depth` (blocking, e.g. a broker call) runs off the event loop."""

    @get(
        "/metrics",
        summary="Prometheus metrics (text format 0.0.4)",
        tags=["health"],
        media_type=MEDIA_TYPE,
        # A scrape may wait on the broker for the queue depth, and in multiprocess mode it
        # reads every process's file: both block, so it runs in a worker thread.
        sync_to_thread=True,
    )
    def metrics() -> Response[bytes]:
        return Response(render(depth), media_type=MEDIA_TYPE)

    return metrics
