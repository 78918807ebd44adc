"""`dedup query` beside an embedded `dedup serve`: it finds an event and its copy, and the
service, which holds the store, keeps serving."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bench.processes import Process, clean_environment, dedup, free_port, wait_ready

from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Process, str]]:
    port = free_port()
    process = Process.start("serve", "--port", str(port), env=clean_environment(), cwd=tmp_path)
    base_url = f"http://127.0.0.1:{port}"
    wait_ready(base_url, process)
    yield process, base_url
    process.kill()


def query(tmp_path: Path, base_url: str, sql: str) -> dict[str, object]:
    out = dedup(
        "query", "--format", "json", "--url", base_url, sql, env=clean_environment(), cwd=tmp_path
    )
    return json.loads(out)  # type: ignore[no-any-return]


def test_the_cli_finds_an_event_and_its_duplicate_while_the_service_runs(served, tmp_path):
    process, base_url = served
    body = {"event": "click", "run": uuid.uuid4().hex}
    first, copy = (
        httpx.post(f"{base_url}/service-event/", json=body, timeout=10).json()["event_id"]
        for _ in range(2)
    )

    sql = f"SELECT event_id, original_event_id FROM event_duplicates WHERE event_id = '{copy}'"
    # The in-process worker records it a moment after the "ok".
    rows = wait_until(
        lambda: query(tmp_path, base_url, sql)["rows"],
        timeout=30,
        interval=0.2,
        what="the duplicate to be recorded",
    )
    assert rows == [[copy, first]]

    stored = query(tmp_path, base_url, "SELECT event_id, payload FROM events")
    assert stored["columns"] == [
        {"name": "event_id", "type": "UUID"},
        {"name": "payload", "type": "String"},
    ]
    assert stored["rows"] == [[first, json.dumps(body, sort_keys=True, separators=(",", ":"))]]

    assert process.popen.poll() is None
    assert httpx.get(f"{base_url}/health/ready", timeout=5).status_code == 200


def test_a_write_from_the_cli_is_refused_and_the_store_keeps_its_tables(served, tmp_path):
    _, base_url = served
    with pytest.raises(AssertionError, match="read"):
        query(tmp_path, base_url, "DROP TABLE events")

    assert query(tmp_path, base_url, "EXISTS TABLE events")["rows"] == [[1]]


def test_with_nothing_serving_the_cli_opens_the_store_itself(tmp_path):
    dedup("migrate", "up", env=clean_environment(), cwd=tmp_path)
    nowhere = f"http://127.0.0.1:{free_port()}"

    assert query(tmp_path, nowhere, "SELECT count() FROM events")["rows"] == [[0]]
