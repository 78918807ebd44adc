"""GET / and GET /admin/overview: a page that watches the service, and the JSON it reads."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from importlib import resources
from typing import TypeVar
from uuid import UUID

import anyio
import anyio.to_thread
import msgspec
from attrs import evolve
from dedup.adapters.inbound.http.health_controller import Readiness
from dedup.adapters.metrics import DepthProbe, accepted_total
from dedup.application.describe_store import DescribeStore, StoreDescription
from dedup.domain.errors import BackendUnavailableError
from litestar import Controller, Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency, Provide
from litestar.types import Guard

logger = logging.getLogger(__name__)

LATEST = 20
# Nothing leaves the page but its own fetches; no script or style but the page's own.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline';"
    " style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
_NO_STORE = CacheControlHeader(no_store=True)
_QUEUE_PROBE = "broker"  # /health/ready's name for the backend behind the queue depth

T = TypeVar("T")


class LatestRow(msgspec.Struct):
    event_id: UUID
    received_at: datetime
    source: str
    preview: str
    truncated: bool
    copies: int


class StoreView(msgspec.Struct):
    stored: int
    duplicates: dict[str, int]
    latest: list[LatestRow]


class Overview(msgspec.Struct):
    """Totals now, sampled by the page at each refresh; null where a backend did not answer."""

    accepted: int
    store: StoreView | None
    queue: dict[str, int] | None
    health: dict[str, str]


def store_view(found: StoreDescription) -> StoreView:
    return StoreView(
        stored=found.counts.stored,
        duplicates={kind.value: n for kind, n in found.counts.duplicates.items()},
        latest=[
            LatestRow(e.event_id, e.received_at, e.source, e.preview, e.truncated, e.copies)
            for e in found.latest
        ],
    )


async def _unless_unavailable(call: Callable[[], T], what: str) -> T | None:
    # Blocking (the store's lock): off the event loop. A backend that is away leaves its part
    # empty; readiness says which one it is.
    try:
        return await anyio.to_thread.run_sync(call)
    except BackendUnavailableError as exc:
        logger.debug("overview: %s unavailable: %s", what, exc)
        return None


class LivePageController(Controller):
    """The page holds no data; it asks /admin/overview every 2 s and keeps the series itself."""

    path = "/"
    tags = ["admin"]  # noqa: RUF012 - Litestar reads this class attribute

    @get("/", include_in_schema=False, cache_control=_NO_STORE)
    async def page(self, page_html: NamedDependency[bytes]) -> Response[bytes]:
        return Response(page_html, media_type="text/html", headers=_PAGE_HEADERS)

    @get("/admin/overview", summary="What the live page shows", cache_control=_NO_STORE)
    async def overview(
        self,
        describe_store: NamedDependency[DescribeStore],
        queue_depth: NamedDependency[DepthProbe],
        readiness: NamedDependency[Readiness],
    ) -> Overview:
        store: StoreDescription | None = None
        depths: Mapping[str, int] | None = None

        async def read_store() -> None:
            nonlocal store
            store = await _unless_unavailable(
                lambda: describe_store.execute(latest=LATEST), "store"
            )

        def read_depths() -> None:
            nonlocal depths
            depths = queue_depth()

        # Reading the depths asks the broker already: that read is the broker's probe too, so a
        # refresh opens one broker connection, not two, and the depths get the probe's timeout.
        checks = evolve(readiness, probes={**readiness.probes, _QUEUE_PROBE: read_depths})
        async with anyio.create_task_group() as group:
            group.start_soon(read_store)
            health = await checks.check()
        return Overview(
            # In multiprocess mode this reads every process's file: off the loop as well.
            accepted=await anyio.to_thread.run_sync(accepted_total),
            store=None if store is None else store_view(store),
            queue=None if depths is None else dict(depths),
            health=health,
        )


def _constant(value: object) -> Provide:
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)


def live_page_router(
    *, describe_store: DescribeStore, queue_depth: DepthProbe, guard: Guard
) -> Router:
    """The page and its JSON, behind `guard`; the app provides `readiness`."""
    page_html = resources.files(__package__).joinpath("live_page.html").read_bytes()
    return Router(
        path="/",
        route_handlers=[LivePageController],
        guards=[guard],
        dependencies={
            "describe_store": _constant(describe_store),
            "queue_depth": _constant(queue_depth),
            "page_html": _constant(page_html),
        },
    )
