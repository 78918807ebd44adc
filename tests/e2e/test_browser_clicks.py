"""The flow dedup exists for, in headless Chromium: a page on another origin sends clicks.

A product's page (tests/e2e/click_page.html, served by a site of the test's own) sends one
click with fetch, one with navigator.sendBeacon and one through analytics.js — the npm build
of @segment/analytics-next, loaded with `cdnURL` pointed at dedup. A double click on the fetch
button sends the event twice; it is stored once. DEDUP_CORS_ORIGINS names the page's origin.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import StackFactory
from tests.e2e.processes import wait_until
from tests.e2e.sdks import ANALYTICS_NEXT, API_KEYS, KEYS, duplicates_by_original, stored_messages
from tests.e2e.static_site import StaticSite

pytestmark = pytest.mark.e2e

PAGE = Path(__file__).with_name("click_page.html")
WITHIN_MS = 30_000


@pytest.fixture
def site() -> Iterator[StaticSite]:
    if not (ANALYTICS_NEXT / "index.js").is_file():
        pytest.fail(f"{ANALYTICS_NEXT} is missing: run scripts/ensure-npm.sh (make test does)")
    served = StaticSite(
        page=PAGE.read_text(), folder=ANALYTICS_NEXT, mount="/analytics-next/bundles"
    ).start()
    yield served
    served.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(WITHIN_MS)
    yield opened
    context.close()


def test_clicks_sent_by_fetch_sendbeacon_and_analytics_js_are_each_stored_once(
    make_stack: StackFactory, site: StaticSite, page: Page
) -> None:
    stack = make_stack(api_keys=API_KEYS, cors_origins=site.origin)
    visitor = f"visitor-{uuid.uuid4().hex[:12]}"
    said: list[str] = []
    page.on("console", lambda message: said.append(f"{message.type}: {message.text}"))
    page.on("requestfailed", lambda request: said.append(f"failed: {request.url}"))
    page.on(
        "response",
        lambda response: (
            response.status >= 400 and said.append(f"failed: {response.status} {response.url}")
        ),
    )
    log = page.locator("#log li")

    query = urlencode({"dedup": stack.base_url, "key": KEYS["web"], "visitor": visitor})
    page.goto(f"{site.origin}/?{query}")
    expect(log.filter(has_text="analytics.js")).to_have_text(["analytics.js ready"])

    page.dblclick("#buy")
    expect(log.filter(has_text="fetch")).to_have_text(["fetch 200", "fetch 200"])
    page.click("#subscribe")
    expect(log.filter(has_text="beacon")).to_have_text(["beacon true"])
    page.click("#share")
    shared = log.filter(has_text="analytics.js sent")
    expect(shared).to_have_count(1)
    analytics_js_id = shared.inner_text().removeprefix("analytics.js sent ")

    stack.wait_drained()
    wait_until(lambda: len(stored_messages(stack)) >= 3, timeout=60, what=f"3 rows ({said})")
    rows = {
        row.payload.get("event"): row for found in stored_messages(stack).values() for row in found
    }
    assert sorted(rows) == ["Article Shared", "Newsletter Subscribed", "Order Placed"], said
    assert {row.source for row in rows.values()} == {"web"}
    assert rows["Newsletter Subscribed"].payload["messageId"] == f"beacon-{visitor}"
    assert rows["Article Shared"].payload["messageId"] == analytics_js_id
    assert rows["Article Shared"].payload["context"]["page"]["url"].startswith(site.origin)
    # The double click's second copy is recorded as a duplicate of the first, nothing else.
    assert duplicates_by_original(stack) == {rows["Order Placed"].event_id: 1}
    assert [m for m in said if m.startswith(("error", "failed"))] == []
