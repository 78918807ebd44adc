"""The flow dedup exists for, in headless Chromium: a page on another origin sends clicks.

A product's page (tests/e2e/click_page.html, served by a site of the test's own) sends one
click with fetch, one with navigator.sendBeacon and one through analytics.js — the npm build
of @segment/analytics-next, loaded with `cdnURL` pointed at dedup. A double click on the fetch
button sends the event twice; it is stored once. DEDUP_CORS_ORIGINS names the page's origin.
When dedup's answer to analytics.js is lost on the way (a TCP relay drops it), analytics.js
retries on its own; the retry is recorded as a plain duplicate of the stored message.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Relay, StackFactory, relayed
from tests.e2e.processes import wait_until
from tests.e2e.sdks import (
    ANALYTICS_NEXT,
    API_KEYS,
    KEYS,
    duplicate_kinds,
    duplicates_by_original,
    stored_messages,
)
from tests.e2e.static_site import StaticSite

pytestmark = pytest.mark.e2e

PAGE = Path(__file__).with_name("click_page.html")


@pytest.fixture
def site() -> Iterator[StaticSite]:
    if not (ANALYTICS_NEXT / "index.js").is_file():
        pytest.fail(f"{ANALYTICS_NEXT} is missing: run scripts/ensure-npm.sh (make test does)")
    served = StaticSite(
        page=PAGE.read_text(), folder=ANALYTICS_NEXT, mount="/analytics-next/bundles"
    ).start()
    yield served
    served.stop()


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
    assert duplicate_kinds(stack) == {"content": 1}
    assert [m for m in said if m.startswith(("error", "failed"))] == []


def test_analytics_js_retrying_after_an_answer_lost_on_the_way_is_recorded_as_a_duplicate(
    make_stack: StackFactory, relay: Relay, site: StaticSite, page: Page
) -> None:
    stack = make_stack(api_keys=API_KEYS, cors_origins=site.origin)
    front = relay(stack.base_url)
    log = page.locator("#log li")
    visitor = f"visitor-{uuid.uuid4().hex[:12]}"
    query = urlencode(
        {"dedup": relayed(stack.base_url, front), "key": KEYS["web"], "visitor": visitor}
    )
    page.goto(f"{site.origin}/?{query}")
    expect(log.filter(has_text="analytics.js")).to_have_text(["analytics.js ready"])
    page.click("#share")  # a first event, so the preflight is answered and cached
    expect(log.filter(has_text="analytics.js sent")).to_have_count(1)

    front.lose_replies(2)  # dedup queues the post; the browser never hears it did
    # Playwright hands its events over only while it is called: wait on the request itself.
    with page.expect_request(lambda request: "x-retry-count" in request.headers) as retry:
        page.click("#share")
    assert retry.value.url.endswith("/v1/t")
    expect(log.filter(has_text="analytics.js sent")).to_have_count(2)
    second = log.filter(has_text="analytics.js sent").nth(1).inner_text().split()[-1]

    stack.wait_drained()
    wait_until(lambda: sum(duplicate_kinds(stack).values()) >= 1, timeout=60, what="a duplicate")
    stored = stored_messages(stack)
    assert len(stored) == 2 and len(stored[second]) == 1, stored
    # Every copy that arrived after the first is a duplicate of it; analytics.js rewrites
    # `_metadata` on a retry, which is delivery bookkeeping, not content: no conflict.
    copies = duplicates_by_original(stack)
    assert set(copies) == {stored[second][0].event_id}, copies
    assert set(duplicate_kinds(stack)) == {"content"}, duplicate_kinds(stack)
