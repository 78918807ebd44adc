"""create_app: the Litestar application, wired from already-built collaborators."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from types import MappingProxyType
from typing import Any

from dedup.adapters.inbound.http.admin_guard import AdminGuard
from dedup.adapters.inbound.http.auth import WriteKeys
from dedup.adapters.inbound.http.body import BodyReader
from dedup.adapters.inbound.http.cdn_settings_controller import CdnSettingsController
from dedup.adapters.inbound.http.cors import CorsPolicy, IngestCors
from dedup.adapters.inbound.http.errors import EXCEPTION_HANDLERS
from dedup.adapters.inbound.http.events_controller import EventsController
from dedup.adapters.inbound.http.health_controller import HealthController, Readiness
from dedup.adapters.inbound.http.query_controller import QueryController
from dedup.adapters.inbound.http.tracking_controller import TrackingController
from dedup.application.accept_events import AcceptEvents
from dedup.application.run_query import RunQuery
from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler

_NO_KEYS: Mapping[str, str] = MappingProxyType({})


def _version() -> str:
    try:
        return version("dedup")
    except PackageNotFoundError:
        return "0.0.0"


def _constant(value: Any) -> Provide:
    # Built once and cached: resolving it per request is a dictionary hit, not a call chain.
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)


def _ingest(cors_origins: Sequence[str]) -> list[ControllerRouterHandler]:
    """The paths clients send events to, under CORS when origins are configured."""
    handlers: list[ControllerRouterHandler] = [
        EventsController,
        TrackingController,
        CdnSettingsController,
    ]
    if not cors_origins:
        return handlers
    cors = DefineMiddleware(IngestCors, policy=CorsPolicy.of(cors_origins))
    return [Router(path="/", route_handlers=handlers, middleware=[cors])]


def create_app(
    *,
    accept_events: AcceptEvents,
    probes: Mapping[str, Callable[[], None]],
    max_body_bytes: int = 1_048_576,
    max_batch: int = 1000,
    max_depth: int = 64,
    api_keys: Mapping[str, str] = _NO_KEYS,
    cors_origins: Sequence[str] = (),
    run_query: RunQuery | None = None,
    admin_key: str | None = None,
    extra_route_handlers: Sequence[ControllerRouterHandler] = (),
    on_startup: Sequence[Callable[..., Any]] = (),
    on_shutdown: Sequence[Callable[..., Any]] = (),
    ready_timeout: float = 2.0,
    ready_needs: frozenset[str] | None = None,
    debug: bool = False,
) -> Litestar:
    """The API; extra_route_handlers is where GET /metrics and other routes plug in.

    With run_query, POST /admin/query answers this machine, or a request with admin_key.
    """
    if max_body_bytes < 1 or max_batch < 1 or max_depth < 1:
        raise ValueError("max_body_bytes, max_batch and max_depth must be positive")
    dependencies = {
        "accept_events": _constant(accept_events),
        "readiness": _constant(Readiness(probes=probes, timeout=ready_timeout, needed=ready_needs)),
    }
    queries: list[ControllerRouterHandler] = []
    if run_query is not None:
        dependencies["run_query"] = _constant(run_query)
        queries.append(QueryController)
    return Litestar(
        route_handlers=[*_ingest(cors_origins), HealthController, *queries, *extra_route_handlers],
        dependencies=dependencies,
        # Read by the ingest handlers from app.state, not injected: two more injected values
        # would make Litestar resolve them in a task group on every request.
        state=State(
            {
                "body_reader": BodyReader(
                    max_body_bytes=max_body_bytes, max_batch=max_batch, max_depth=max_depth
                ),
                "write_keys": WriteKeys.of(api_keys),
                # Read by admin_only, the guard of every admin path.
                "admin_guard": AdminGuard.of(admin_key),
            }
        ),
        exception_handlers=EXCEPTION_HANDLERS,
        # Litestar counts wire bytes against this; BodyReader counts the decompressed body
        # against the same number, so both limits agree and either one answers 413.
        request_max_body_size=max_body_bytes,
        openapi_config=OpenAPIConfig(title="dedup", version=_version(), path="/schema"),
        on_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
        # Logging is configured by the process (infrastructure), not by Litestar per app.
        logging_config=None,
        debug=debug,
    )
