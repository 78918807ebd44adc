"""The Python SDKs people already use, pointed at a running dedup: only `host` changes.

segment-analytics-python (`segment.analytics`) and rudder-sdk-python (`rudderstack.analytics`,
which gzips every request) each send every message type through their own batching, retry
on their own after a 503 or a lost answer, and report a wrong write key's 401 to on_error.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import requests
import rudderstack.analytics
import rudderstack.analytics.request
import segment.analytics
import segment.analytics.request
from attrs import define, field

from tests.e2e.conftest import Relay, Stack, StackFactory, relayed
from tests.e2e.processes import wait_until
from tests.e2e.sdks import (
    API_KEYS,
    KEYS,
    WRONG_KEY,
    assert_each_resent_once,
    assert_settled_once,
    duplicates_by_original,
    every_type,
    stack_losing_its_broker,
    stored_messages,
)

pytestmark = pytest.mark.e2e

# name: (package, its transport module, the Content-Encoding it sends by default)
SDKS: dict[str, tuple[ModuleType, ModuleType, str | None]] = {
    "segment-analytics-python": (segment.analytics, segment.analytics.request, None),
    "rudder-sdk-python": (rudderstack.analytics, rudderstack.analytics.request, "gzip"),
}


@define
class Sdk:
    """One SDK's Client factory, with what it reports: on_error calls and HTTP answers."""

    name: str
    package: ModuleType
    session: requests.Session
    encoding: str | None
    errors: list[tuple[Exception, list[dict[str, Any]]]] = field(factory=list)
    statuses: list[int] = field(factory=list)
    encodings: list[str | None] = field(factory=list)
    clients: list[Any] = field(factory=list)

    def client(self, *, host: str, write_key: str, **options: Any) -> Any:
        # A second to gather a batch (default 0.5 s), so that a loaded machine still sends
        # the test's messages as one batch, the request a test breaks.
        options = {"upload_interval": 1.0} | options
        client = self.package.Client(write_key, host=host, on_error=self._on_error, **options)
        self.clients.append(client)
        return client

    def send_all(self, client: Any, messages: list[Any]) -> None:
        for message in messages:
            method, kwargs = message.python_call()
            getattr(client, method)(**kwargs)

    def _on_error(self, error: Exception, batch: list[dict[str, Any]]) -> None:
        self.errors.append((error, batch))

    def record(self, response: requests.Response, *_: Any, **__: Any) -> None:
        self.statuses.append(response.status_code)
        self.encodings.append(response.request.headers.get("Content-Encoding"))


@pytest.fixture(params=sorted(SDKS))
def sdk(request: pytest.FixtureRequest) -> Iterator[Sdk]:
    package, transport, encoding = SDKS[request.param]
    # The SDK's own requests session (module-level): watch its answers, change nothing.
    session = transport._session
    found = Sdk(name=request.param, package=package, session=session, encoding=encoding)
    session.hooks["response"].append(found.record)
    yield found
    session.hooks["response"].remove(found.record)
    for client in found.clients:
        client.join()


def test_every_message_type_sent_in_the_sdks_batches_is_stored_once_under_the_keys_source(
    sdk: Sdk, make_stack: StackFactory
) -> None:
    stack = make_stack(api_keys=API_KEYS)
    messages = every_type(copies=3)
    client = sdk.client(host=stack.base_url, write_key=KEYS["backend"])

    sdk.send_all(client, messages)
    client.flush()

    assert sdk.errors == []
    # The SDK's own batching: fewer requests than messages, every one answered 200.
    assert set(sdk.statuses) == {200} and len(sdk.statuses) < len(messages)
    assert set(sdk.encodings) == {sdk.encoding}  # rudder-sdk-python gzips by default
    assert_settled_once(stack, messages, source="backend")
    assert duplicates_by_original(stack) == {}


def test_the_sdks_retry_after_a_503_is_stored_once_as_the_first_copy(
    sdk: Sdk, make_stack: StackFactory, relay: Relay
) -> None:
    stack, broker = stack_losing_its_broker(make_stack, relay)
    messages = every_type()
    client = sdk.client(host=stack.base_url, write_key=KEYS["backend"])

    with broker.down():
        sdk.send_all(client, messages)
        wait_until(lambda: 503 in sdk.statuses, timeout=60, what="dedup to answer 503")
    client.flush()  # the SDK retries on its own until dedup takes the batch

    assert sdk.errors == []
    assert sdk.statuses[0] == 503 and sdk.statuses[-1] == 200, sdk.statuses
    assert_settled_once(stack, messages, source="backend")
    # A 503 means nothing of the request was queued: the retry is the first copy stored, and
    # no duplicate is recorded. (A retry after an answer lost on the way is one: next test.)
    assert duplicates_by_original(stack) == {}


def test_a_retry_after_an_answer_lost_on_the_way_is_recorded_as_a_duplicate(
    sdk: Sdk, make_stack: StackFactory, relay: Relay
) -> None:
    stack = make_stack(api_keys=API_KEYS)
    front = relay(stack.base_url)
    messages = every_type()
    client = sdk.client(host=relayed(stack.base_url, front), write_key=KEYS["backend"])

    front.lose_replies(1)  # dedup queues the batch; the SDK never hears it did
    sdk.send_all(client, messages)
    client.flush()

    assert sdk.errors == []
    assert front.replies_lost == 1 and sdk.statuses == [200], sdk.statuses
    assert_each_resent_once(stack, messages, source="backend")


def test_a_wrong_write_key_is_reported_by_the_sdk_as_a_401_and_nothing_is_stored(
    sdk: Sdk, stack_with_keys: Stack
) -> None:
    messages = every_type()
    client = sdk.client(host=stack_with_keys.base_url, write_key=WRONG_KEY, max_retries=2)

    sdk.send_all(client, messages)
    client.flush()

    assert sdk.statuses == [401], sdk.statuses  # not retried: the SDK knows a 401 is final
    ((error, batch),) = sdk.errors
    assert isinstance(error, sdk.package.request.APIError), repr(error)
    assert error.status == 401
    # dedup's error body carries the `code` and `message` the SDK reads.
    assert error.code not in {None, "unknown"} and error.message, (error.code, error.message)
    assert sorted(m["messageId"] for m in batch) == sorted(m.message_id for m in messages)
    stack_with_keys.wait_drained()
    assert stored_messages(stack_with_keys) == {}


@pytest.fixture
def stack_with_keys(make_stack: StackFactory) -> Stack:
    return make_stack(api_keys=API_KEYS)
