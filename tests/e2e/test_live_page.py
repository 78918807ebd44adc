"""The live page in headless Chromium: it follows what an embedded `dedup serve` is sent.

The browser is Debian's chromium (tests/browser.py: $CHROMIUM, else /usr/bin/chromium), driven
by Playwright (the `browser` and `page` fixtures of tests/e2e/conftest.py); Playwright's own
browser download is never used.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bench.processes import Process, clean_environment, free_port, wait_ready
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

# The page refreshes every 2 s; the embedded queue stores within a fraction of that.
WITHIN_MS = 20_000


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    """An embedded `dedup serve` in an empty directory: nothing set, nothing else running."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Process.start("serve", "--port", str(port), env=clean_environment(), cwd=tmp_path)
    try:
        wait_ready(url, server)
        yield url
        assert server.stop() == 0, server.output()
    finally:
        server.kill()


def test_the_page_follows_an_event_and_its_duplicate_as_they_arrive(
    base_url: str, page: Page
) -> None:
    page.goto(f"{base_url}/")
    expect(page.locator("#status")).to_contain_text("live", timeout=WITHIN_MS)
    expect(page.locator("#stored")).to_have_text("0", timeout=WITHIN_MS)
    expect(page.locator("#accepted")).to_have_text("0")
    expect(page.locator('#health li[data-backend="database"]')).to_have_text("database: ok")

    run = uuid.uuid4().hex
    body = {"event": "page_test", "run": run}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        first, second = (client.post("/service-event/", json=body) for _ in range(2))
    assert first.status_code == second.status_code == 200
    original = first.json()["event_id"]

    expect(page.locator("#accepted")).to_have_text("2", timeout=WITHIN_MS)
    expect(page.locator("#stored")).to_have_text("1", timeout=WITHIN_MS)
    expect(page.locator("#dup-content")).to_have_text("1", timeout=WITHIN_MS)
    expect(page.locator("#dup-key_conflict")).to_have_text("0")
    row = page.locator(f'#latest tr[data-event-id="{original}"]')
    expect(row).to_have_class(re.compile(r"\bduplicated\b"), timeout=WITHIN_MS)
    expect(row.locator(".copies")).to_have_text("1 copy")
    expect(row.locator(".payload")).to_contain_text(run)
    expect(page.locator("#latest tbody tr")).to_have_count(1)
    # Every series has two samples or more by now, so each draws its line.
    expect(page.locator("#chart polyline")).to_have_count(4, timeout=WITHIN_MS)
