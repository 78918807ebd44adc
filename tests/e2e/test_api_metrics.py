"""`dedup serve --workers 2`: whichever process answers GET /metrics, it counts for all of them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bench.processes import Process, clean_environment, dedup, free_port, wait_ready
from dedup.adapters.outbound.clickhouse.miniorm import Statement, ident
from dedup.adapters.outbound.clickhouse.url import server_executor_from_url
from kombu import Connection

from tests.scrape import value
from tests.servers import BROKER_URL, CLICKHOUSE_URL, REDIS_URL, clickhouse_url

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

EVENTS = 40


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    tag = f"dedup_e2e_{uuid.uuid4().hex[:8]}"
    env = clean_environment(
        DEDUP_CLICKHOUSE_URL=clickhouse_url(tag),
        DEDUP_REDIS_URL=REDIS_URL,
        DEDUP_BROKER_URL=BROKER_URL,
        DEDUP_QUEUE_NAME=f"{tag}.events",
        DEDUP_DATA_DIR=str(tmp_path / "data"),
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    dedup("migrate", "up", env=env, cwd=tmp_path)
    yield env, tag
    executor = server_executor_from_url(CLICKHOUSE_URL)
    executor.execute(Statement.text(f"DROP DATABASE IF EXISTS {ident(tag)}"))
    executor.close()
    with Connection(BROKER_URL) as connection:
        channel = connection.channel()
        for queue in (f"{tag}.events", f"{tag}.events.dead"):
            channel.queue_delete(queue)
        channel.exchange_delete(f"{tag}.events")
        channel.exchange_delete(f"{tag}.events.dlx")
        channel.close()


def test_every_api_process_scrape_shows_the_events_all_of_them_accepted(stack, tmp_path):
    env, _tag = stack
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = Process.start("serve", "--port", str(port), "--workers", "2", env=env, cwd=tmp_path)
    try:
        wait_ready(base, api)
        for n in range(EVENTS):
            # A new connection each time, so both processes take some of the events.
            assert httpx.post(f"{base}/service-event/", json={"n": n}).status_code == 200
        scrapes = [httpx.get(f"{base}/metrics").text for _ in range(6)]
    finally:
        assert api.stop() == 0, api.output()

    accepted = [
        value("dedup_events_accepted_total", {"endpoint": "single"}, text=text) for text in scrapes
    ]
    assert accepted == [EVENTS] * len(scrapes)
    # Nobody consumes the test's queue: its messages wait there, and the scrape says so.
    assert all(value("dedup_queue_depth", {"queue": "events"}, text=text) >= 1 for text in scrapes)
    assert (tmp_path / "data" / "prometheus" / f"serve-{port}").is_dir()
