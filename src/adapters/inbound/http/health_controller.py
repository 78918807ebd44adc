"""GET /health/live and /health/ready: is the process up, can it take events, what is degraded."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import anyio
import anyio.to_thread
import msgspec
from attrs import define, field
from dedup.domain.errors import BackendUnavailableError
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

logger = logging.getLogger(__name__)

Probe = Callable[[], None]


class Live(msgspec.Struct):
    status: str = "ok"


class Ready(msgspec.Struct, omit_defaults=True):
    """status "ok", "degraded" (ready, a backend it can do without is away) or "unavailable";
    each backend's state: "ok", "unavailable", "timeout" or "error"."""

    status: str
    checks: dict[str, str]
    error: str | None = None
    detail: str | None = None


@define
class Readiness:
    """Runs every probe at once, each in a worker thread and within the timeout."""

    probes: Mapping[str, Probe]
    timeout: float = 2.0
    # The backends without which no "ok" can be given; None: every probe. The others only
    # degrade the answer: with ClickHouse or Redis away, events still queue to be stored.
    needed: frozenset[str] | None = None
    # Own limiter: probes stuck on a dead backend can never starve other thread work.
    limiter: anyio.CapacityLimiter = field(factory=lambda: anyio.CapacityLimiter(8))

    async def check(self) -> dict[str, str]:
        results: dict[str, str] = {}
        async with anyio.create_task_group() as group:
            for name, probe in self.probes.items():
                group.start_soon(self._run, name, probe, results)
        return {name: results[name] for name in self.probes}

    async def _run(self, name: str, probe: Probe, results: dict[str, str]) -> None:
        try:
            with anyio.fail_after(self.timeout):
                # abandon_on_cancel: a probe that hangs must not hold the answer past the timeout.
                await anyio.to_thread.run_sync(probe, abandon_on_cancel=True, limiter=self.limiter)
        except TimeoutError:
            results[name] = "timeout"
        except BackendUnavailableError as exc:
            results[name] = "unavailable"
            logger.warning("readiness: %s", exc)
        except Exception:
            results[name] = "error"
            logger.exception("readiness probe %r failed unexpectedly", name)
        else:
            results[name] = "ok"


_NOT_READY = ResponseSpec(
    data_container=Ready, description="A backend is unreachable", generate_examples=False
)


class HealthController(Controller):
    """Liveness for the process supervisor, readiness for the load balancer."""

    path = "/health"
    tags = ["health"]  # noqa: RUF012 - Litestar reads this class attribute

    @get("/live", summary="The process answers")
    async def live(self) -> Live:
        return Live()

    @get("/ready", summary="The API can take events", responses={503: _NOT_READY})
    async def ready(self, readiness: NamedDependency[Readiness]) -> Response[Ready]:
        checks = await readiness.check()
        failed = [name for name, state in checks.items() if state != "ok"]
        needed = readiness.needed if readiness.needed is not None else frozenset(checks)
        missing = [name for name in failed if name in needed]
        states = ", ".join(f"{name} {checks[name]}" for name in failed)
        if missing:
            body = Ready(
                "unavailable", checks, error="service_unavailable", detail=f"not ready: {states}"
            )
            return Response(body, status_code=503)
        if failed:
            detail = f"degraded: {states}; events are accepted and stored once it is back"
            return Response(Ready(status="degraded", checks=checks, detail=detail))
        return Response(Ready(status="ok", checks=checks))
