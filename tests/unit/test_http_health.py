"""Health endpoints, OpenAPI and the app factory's hooks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import pytest
from dedup.application.accept_events import AcceptEvents
from dedup.domain.errors import BackendUnavailableError
from dedup.infrastructure.app import create_app
from dedup.infrastructure.ids import new_event_id
from litestar import get
from litestar.testing import TestClient

from tests.fakes import FakeQueue


def client_for(probes: Mapping[str, Callable[[], None]], **app_options: object) -> TestClient:
    accept_events = AcceptEvents(
        queue=FakeQueue(), clock=lambda: datetime.now(UTC), new_id=new_event_id
    )
    return TestClient(create_app(accept_events=accept_events, probes=probes, **app_options))


def fine() -> None:
    pass


def down() -> None:
    raise BackendUnavailableError("cache", "connection refused")


def broken() -> None:
    raise RuntimeError("a bug in the probe")


def test_liveness_answers_ok_without_asking_any_backend():
    with client_for({"broker": down}) as client:
        response = client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_answers_ok_when_every_backend_answers():
    with client_for({"broker": fine, "cache": fine, "database": fine}) as client:
        response = client.get("/health/ready")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"broker": "ok", "cache": "ok", "database": "ok"},
    }


def test_readiness_answers_503_naming_each_backend_that_failed():
    with client_for({"broker": fine, "cache": down, "database": broken}) as client:
        response = client.get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"] == {"broker": "ok", "cache": "unavailable", "database": "error"}
    assert body["error"] == "service_unavailable"
    assert "cache" in body["detail"] and "database" in body["detail"]
    assert "bug" not in response.text


def test_a_hanging_probe_times_out_instead_of_holding_the_answer():
    release = threading.Event()

    def hangs() -> None:
        release.wait(30)  # bounds only a failure: an answer that waited would then say "ok"

    try:
        with client_for({"database": hangs, "cache": fine}, ready_timeout=1.0) as client:
            response = client.get("/health/ready")
    finally:
        release.set()

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "timeout", "cache": "ok"}


def test_probes_run_in_parallel_off_the_event_loop():
    # Each probe returns only once all three are running at the same time; run one after the
    # other, or on the event loop, the first would wait for the others until the barrier broke.
    all_running = threading.Barrier(3, timeout=30)

    def meets_the_others() -> None:
        all_running.wait()

    probes = {"broker": meets_the_others, "cache": meets_the_others, "database": meets_the_others}
    with client_for(probes, ready_timeout=60) as client:
        response = client.get("/health/ready")

    assert response.status_code == 200
    assert response.json()["checks"] == {"broker": "ok", "cache": "ok", "database": "ok"}


def test_openapi_is_served_at_schema_under_the_title_dedup():
    with client_for({}) as client:
        response = client.get("/schema/openapi.json")

    assert response.status_code == 200
    spec = response.json()
    assert spec["info"]["title"] == "dedup"
    assert {"/service-event", "/service-event/batch", "/health/live", "/health/ready"} <= set(
        spec["paths"]
    )
    one = spec["paths"]["/service-event"]["post"]
    assert one["requestBody"]["content"]["application/json"]["schema"]["type"] == "object"
    assert {"200", "400", "401", "413", "415", "422", "503"} <= set(one["responses"])


def test_extra_route_handlers_plug_in_beside_the_api():
    @get("/metrics", media_type="text/plain", include_in_schema=False)
    async def metrics() -> str:
        return "dedup_up 1\n"

    with client_for({}, extra_route_handlers=[metrics]) as client:
        response = client.get("/metrics")

    assert response.status_code == 200
    assert response.text == "dedup_up 1\n"


def test_startup_and_shutdown_hooks_run_with_the_app():
    calls: list[str] = []

    with client_for(
        {},
        on_startup=[lambda: calls.append("up")],
        on_shutdown=[lambda: calls.append("down")],
    ):
        assert calls == ["up"]

    assert calls == ["up", "down"]


@pytest.mark.parametrize("option", ["max_body_bytes", "max_batch", "max_depth"])
def test_a_limit_below_one_is_refused_at_startup(option):
    with pytest.raises(ValueError, match="must be positive"):
        client_for({}, **{option: 0})


def test_a_backend_the_api_can_do_without_degrades_readiness_but_keeps_it_ready():
    probes = {"broker": fine, "cache": down, "database": down}
    with client_for(probes, ready_needs=frozenset({"broker"})) as client:
        response = client.get("/health/ready")
    assert response.status_code == 200  # events still queue: the load balancer keeps sending
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"] == {"broker": "ok", "cache": "unavailable", "database": "unavailable"}
    assert "cache unavailable" in body["detail"] and "database unavailable" in body["detail"]


def test_without_the_broker_nothing_can_be_accepted_so_the_api_is_not_ready():
    probes = {"broker": down, "cache": fine, "database": fine}
    with client_for(probes, ready_needs=frozenset({"broker"})) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "unavailable"
