"""The embedded profile: `dedup serve` with nothing set keeps what it stored, once."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bench.processes import Process, clean_environment, free_port, wait_ready
from dedup.adapters.outbound.clickhouse import ChdbExecutor, ClickHouseInspector

pytestmark = pytest.mark.e2e


class EmbeddedServer:
    """`dedup serve` started and stopped in one directory with a clean environment."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: Process | None = None

    def start(self) -> None:
        self.process = Process.start(
            "serve", "--port", str(self.port), env=clean_environment(), cwd=self.directory
        )
        wait_ready(self.base_url, self.process)

    def stop(self) -> None:
        assert self.process is not None
        code = self.process.stop()
        assert code == 0, self.process.output()

    def inspect(self) -> tuple[dict[str, str], dict[str, str]]:
        """({payload: event_id} of stored events, {duplicate id: original id}), read directly."""
        executor = ChdbExecutor(str(self.directory / "var" / "chdb"))
        try:
            inspector = ClickHouseInspector(executor=executor, database="dedup")
            events = inspector.events()
            duplicates = inspector.duplicates()
        finally:
            executor.close()
        stored = {e.payload: str(e.event_id) for e in events}
        assert len(stored) == len(events), "a payload is stored twice"
        return stored, {str(d.event_id): str(d.original_event_id) for d in duplicates}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    embedded = EmbeddedServer(tmp_path)
    yield embedded
    if embedded.process is not None:
        embedded.process.kill()


async def post_concurrently(base_url: str, bodies: list[dict[str, object]]) -> list[str]:
    """POST every body at once over separate connections; return the accepted event ids."""
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        responses = await asyncio.gather(*(client.post("/service-event/", json=b) for b in bodies))
    assert [r.status_code for r in responses] == [200] * len(bodies), [r.text for r in responses]
    return [r.json()["event_id"] for r in responses]


def canonical(body: dict[str, object]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def test_an_embedded_service_stores_each_event_once_and_keeps_it_across_a_restart(
    server: EmbeddedServer,
) -> None:
    run = uuid.uuid4().hex
    distinct = [{"event": "click", "run": run, "n": n} for n in range(20)]
    sent = [body for body in distinct for _ in range(3)]  # three copies of each, all at once

    server.start()
    ids = asyncio.run(post_concurrently(server.base_url, sent))
    server.stop()  # a clean stop drains the in-process queue

    stored, duplicates = server.inspect()
    assert sorted(stored) == sorted(canonical(b) for b in distinct)
    assert len(set(ids)) == 60
    assert set(stored.values()) | set(duplicates) == set(ids)  # every "ok" accounted for once
    assert set(duplicates.values()) <= set(stored.values())

    server.start()
    copy_id, new_id = asyncio.run(
        post_concurrently(server.base_url, [distinct[0], {"event": "new", "run": run}])
    )
    server.stop()

    stored_after, duplicates_after = server.inspect()
    assert stored_after == {**stored, canonical({"event": "new", "run": run}): new_id}
    assert duplicates_after == {**duplicates, copy_id: stored[canonical(distinct[0])]}
