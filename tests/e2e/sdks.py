"""What the SDK tests share: write keys, one message of every type, and what ClickHouse holds.

The SDKs themselves are the real packages: segment-analytics-python and rudder-sdk-python
(pyproject's dev extras), @segment/analytics-node and @segment/analytics-next (tests/e2e/js,
installed by scripts/ensure-npm.sh).
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from attrs import frozen
from dedup.adapters.outbound.clickhouse.miniorm import ident

from tests.e2e.conftest import Relay, Stack, StackFactory, relayed
from tests.e2e.processes import wait_until
from tests.scrape import samples
from tests.servers import BROKER_URL
from tests.tcp_proxy import TcpProxy

JS = Path(__file__).with_name("js")
NODE_SDK = JS / "node_sdk.mjs"
ANALYTICS_NEXT = JS / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd"

# DEDUP_API_KEYS: a known key names the source its events are stored under.
KEYS = {"backend": "wk-backend-3f9c", "web": "wk-web-81d2"}
API_KEYS = ",".join(f"{name}={key}" for name, key in KEYS.items())
WRONG_KEY = "wk-nobody-0000"

TYPES = ("track", "identify", "page", "screen", "group", "alias")


@frozen
class Message:
    """One call of an SDK, in a neutral form each test translates into its SDK's call."""

    type: str
    message_id: str
    user_id: str
    run: str

    def fields(self) -> dict[str, Any]:
        """The call's fields as the spec (and analytics-node) names them: userId, groupId..."""
        props = {"run": self.run, "type": self.type}
        by_type: dict[str, dict[str, Any]] = {
            "track": {"userId": self.user_id, "event": "Signed Up", "properties": props},
            "identify": {"userId": self.user_id, "traits": props},
            "page": {"userId": self.user_id, "name": "Pricing", "properties": props},
            "screen": {"userId": self.user_id, "name": "Home", "properties": props},
            "group": {"userId": self.user_id, "groupId": f"g-{self.run}", "traits": props},
            "alias": {"previousId": f"anon-{self.user_id}", "userId": self.user_id},
        }
        return by_type[self.type] | {"messageId": self.message_id}

    def python_call(self) -> tuple[str, dict[str, Any]]:
        """(method, kwargs) for analytics-python and rudder-sdk-python (the same signatures)."""
        snake = {re.sub("([A-Z])", r"_\1", name).lower(): v for name, v in self.fields().items()}
        return self.type, snake

    def node_call(self) -> dict[str, Any]:
        """{"method", "params"} for @segment/analytics-node (tests/e2e/js/node_sdk.mjs)."""
        return {"method": self.type, "params": self.fields()}


def every_type(copies: int = 1) -> list[Message]:
    """`copies` messages of each type, each with a messageId of its own."""
    run = uuid.uuid4().hex[:12]
    return [
        Message(type=kind, message_id=str(uuid.uuid4()), user_id=f"user-{run}-{n}", run=run)
        for n in range(copies)
        for kind in TYPES
    ]


@frozen
class StoredMessage:
    event_id: UUID
    source: str
    payload: dict[str, Any]


def stored_messages(stack: Stack) -> dict[str, list[StoredMessage]]:
    """Every row of events (FINAL), by the messageId its payload carries."""
    rows = stack.query(
        f"SELECT event_id, source, payload FROM {ident(stack.database)}.events FINAL"
    )
    found: dict[str, list[StoredMessage]] = {}
    for event_id, source, payload in rows:
        body = json.loads(payload.decode() if isinstance(payload, bytes) else payload)
        found.setdefault(str(body.get("messageId")), []).append(
            StoredMessage(event_id=UUID(str(event_id)), source=source, payload=body)
        )
    return found


def duplicates_by_original(stack: Stack) -> Counter[UUID]:
    """How many copies event_duplicates (FINAL) records against each stored event."""
    rows = stack.query(
        f"SELECT original_event_id FROM {ident(stack.database)}.event_duplicates FINAL"
    )
    return Counter(UUID(str(original)) for (original,) in rows)


def duplicate_kinds(stack: Stack) -> Counter[str]:
    """The kinds (content, key_conflict) of the copies event_duplicates (FINAL) records."""
    db = ident(stack.database)
    rows = stack.query(f"SELECT toString(kind) FROM {db}.event_duplicates FINAL")
    return Counter(str(kind) for (kind,) in rows)


def assert_settled_once(
    stack: Stack, messages: list[Message], *, source: str
) -> dict[str, StoredMessage]:
    """Once the queue is drained and every message has a row: assert_stored_once()."""
    stack.wait_drained()
    wait_until(lambda: len(stored_messages(stack)) >= len(messages), timeout=60, what="rows")
    return assert_stored_once(stack, messages, source=source)


def assert_each_resent_once(stack: Stack, messages: list[Message], *, source: str) -> None:
    """The SDK resent the whole batch with the same messageIds: each message one row, and one
    copy recorded against it as a plain duplicate (the same content, sentAt aside)."""
    stack.wait_drained()
    wait_until(
        lambda: sum(duplicate_kinds(stack).values()) >= len(messages),
        timeout=60,
        what="the resent copies to be recorded",
    )
    stored = assert_stored_once(stack, messages, source=source)
    assert duplicates_by_original(stack) == {row.event_id: 1 for row in stored.values()}
    assert duplicate_kinds(stack) == {"content": len(messages)}


def assert_stored_once(
    stack: Stack, messages: list[Message], *, source: str
) -> dict[str, StoredMessage]:
    """One row per messageId, under `source`, of the message's type; nothing else stored."""
    stored = stored_messages(stack)
    assert sorted(stored) == sorted(m.message_id for m in messages), stored.keys()
    once: dict[str, StoredMessage] = {}
    for message in messages:
        (row,) = stored[message.message_id]
        assert row.source == source, row
        assert row.payload["type"] == message.type, row.payload
        once[message.message_id] = row
    return once


def stack_losing_its_broker(make_stack: StackFactory, relay: Relay) -> tuple[Stack, TcpProxy]:
    """A stack whose API reaches the broker through a relay (the TcpProxy returned, to cut);
    its worker goes straight to the broker. The shared RabbitMQ itself never stops."""
    broker = relay(BROKER_URL)
    stack = make_stack(workers=0, api_keys=API_KEYS, broker_url=relayed(BROKER_URL, broker))
    stack.start_worker(broker_url=BROKER_URL)
    return stack, broker


def start_node_sdk(spec: dict[str, Any]) -> subprocess.Popen[str]:
    """Start tests/e2e/js/node_sdk.mjs with `spec` (see there); finish_node_sdk() reads it."""
    if not (JS / "node_modules" / "@segment" / "analytics-node").is_dir():
        raise AssertionError("tests/e2e/js/node_modules is missing: run scripts/ensure-npm.sh")
    return subprocess.Popen(
        ["node", str(NODE_SDK), json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_node_sdk(node: subprocess.Popen[str], *, timeout: float = 240) -> list[dict[str, Any]]:
    """Wait for the node script; the JSON lines it printed, ending with {"kind": "done"}."""
    try:
        out, err = node.communicate(timeout=timeout)
    finally:
        node.kill()
    assert node.returncode == 0, f"node exited {node.returncode}:\n{out}\n{err}"
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert lines and lines[-1] == {"kind": "done"}, out + err
    return lines


def run_node_sdk(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return finish_node_sdk(start_node_sdk(spec))


def rejected(stack: Stack, code: str) -> float:
    """How many requests dedup has answered with the error `code` (its /metrics)."""
    text = httpx.get(f"{stack.base_url}/metrics", timeout=10).text
    return samples(text).get(("dedup_requests_rejected_total", frozenset({("code", code)})), 0.0)


def kinds(lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["kind"] == kind]
