"""@segment/analytics-node (npm, tests/e2e/js) pointed at a running dedup: only `host` changes.

It sends every message type through its own batching (flushAt), retries on its own after a
503 or a lost answer, and reports a wrong write key's 401 as a delivery failure.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Relay, StackFactory, relayed
from tests.e2e.processes import wait_until
from tests.e2e.sdks import (
    API_KEYS,
    KEYS,
    WRONG_KEY,
    Message,
    assert_each_resent_once,
    assert_settled_once,
    duplicates_by_original,
    every_type,
    finish_node_sdk,
    kinds,
    rejected,
    run_node_sdk,
    stack_losing_its_broker,
    start_node_sdk,
    stored_messages,
)

pytestmark = pytest.mark.e2e


def spec(host: str, write_key: str, messages: list[Message], **settings: Any) -> dict[str, Any]:
    # All of a test's messages in one batch (flushAt), sent at closeAndFlush().
    settings = {"flushAt": len(messages), "flushInterval": 60_000} | settings
    return {
        "host": host,
        "writeKey": write_key,
        "settings": settings,
        "calls": [m.node_call() for m in messages],
    }


def statuses(lines: list[dict[str, Any]]) -> list[int]:
    return [line["status"] for line in kinds(lines, "http_response")]


def test_every_message_type_sent_in_the_sdks_batches_is_stored_once_under_the_keys_source(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(api_keys=API_KEYS)
    messages = every_type(copies=3)

    lines = run_node_sdk(spec(stack.base_url, KEYS["backend"], messages, flushAt=6))

    assert kinds(lines, "error") == []
    assert len(kinds(lines, "delivered")) == len(messages)
    assert statuses(lines) == [200, 200, 200]  # three batches of six
    assert_settled_once(stack, messages, source="backend")
    assert duplicates_by_original(stack) == {}


def test_the_sdks_retry_after_a_503_is_stored_once_as_the_first_copy(
    make_stack: StackFactory, relay: Relay
) -> None:
    stack, broker = stack_losing_its_broker(make_stack, relay)
    messages = every_type()

    with broker.down():
        node = start_node_sdk(spec(stack.base_url, KEYS["backend"], messages))
        wait_until(
            lambda: rejected(stack, "service_unavailable") >= 1,
            timeout=60,
            what="dedup to answer 503",
        )
    lines = finish_node_sdk(node)

    assert kinds(lines, "error") == []
    assert len(kinds(lines, "delivered")) == len(messages)
    answers = statuses(lines)
    assert answers[0] == 503 and answers[-1] == 200, answers
    # Each retry says it is one (X-Retry-Count: 1, 2, ...).
    retries = [line["retryCount"] for line in kinds(lines, "http_request")]
    assert retries == [None, *(str(n) for n in range(1, len(answers)))], retries
    assert_settled_once(stack, messages, source="backend")
    # A 503 means nothing of the request was queued: the retry is the first copy stored.
    assert duplicates_by_original(stack) == {}


def test_a_retry_after_an_answer_lost_on_the_way_is_recorded_as_a_duplicate(
    make_stack: StackFactory, relay: Relay
) -> None:
    stack = make_stack(api_keys=API_KEYS)
    front = relay(stack.base_url)
    messages = every_type()

    front.lose_replies(1)  # dedup queues the batch; the SDK never hears it did
    lines = run_node_sdk(spec(relayed(stack.base_url, front), KEYS["backend"], messages))

    assert kinds(lines, "error") == []
    assert front.replies_lost == 1 and statuses(lines) == [200], lines
    assert_each_resent_once(stack, messages, source="backend")


def test_a_wrong_write_key_is_reported_by_the_sdk_as_a_401_and_nothing_is_stored(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(api_keys=API_KEYS)
    messages = every_type()

    lines = run_node_sdk(spec(stack.base_url, WRONG_KEY, messages))

    assert statuses(lines) == [401]  # not retried: a 401 is final to the SDK
    errors = kinds(lines, "error")
    assert len(errors) == len(messages), lines
    assert {(e["code"], e["reason"]) for e in errors} == {
        ("delivery_failure", "Error: [401] Unauthorized")
    }
    assert len(kinds(lines, "failed")) == len(messages)
    stack.wait_drained()
    assert stored_messages(stack) == {}
