"""The distributed pipeline end to end: `dedup serve` + `dedup worker` as processes, over HTTP."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from uuid import UUID

import httpx
import pytest

from tests.accounting import assert_accounting_invariant
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


async def post_all(
    base_url: str, requests: list[tuple[str, object, dict[str, str]]]
) -> list[httpx.Response]:
    """Every request at once, each on its own connection, as concurrent clients would send them."""
    limits = httpx.Limits(max_connections=len(requests))
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        return list(
            await asyncio.gather(
                *(client.post(path, json=body, headers=headers) for path, body, headers in requests)
            )
        )


def canonical(body: object) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_concurrent_copies_are_stored_once_and_every_other_copy_is_a_duplicate(
    stack: Stack,
) -> None:
    run = uuid.uuid4().hex
    distinct = [{"event": "click", "run": run, "n": n, "name": "zoë"} for n in range(40)]
    requests = [("/service-event/", body, {}) for body in distinct for _ in range(3)]
    batch = [{"event": "view", "run": run, "n": n} for n in range(10)]
    requests += [("/service-event/batch", batch, {}), ("/service-event/batch", batch, {})]

    responses = asyncio.run(post_all(stack.base_url, requests))

    assert {r.status_code for r in responses} == {200}, [
        r.text for r in responses if r.status_code != 200
    ]
    assert all(r.json()["message"] == "ok" for r in responses)
    ok_ids = [UUID(r.json()["event_id"]) for r in responses if "event_id" in r.json()]
    ok_ids += [UUID(i) for r in responses if "event_ids" in r.json() for i in r.json()["event_ids"]]
    assert len(ok_ids) == len(set(ok_ids)) == 120 + 20

    stack.wait_drained(timeout=60)
    ledger = stack.accounting()
    tally = assert_accounting_invariant(ok_ids, ledger)
    assert tally.stored == 50
    assert tally.recorded == 90

    stored_payloads = Counter(
        row[0].decode() if isinstance(row[0], bytes) else row[0]
        for row in stack.query(f"SELECT payload FROM `{stack.database}`.events FINAL")
    )
    assert stored_payloads == Counter(canonical(b) for b in distinct + batch)


def test_an_idempotency_key_reused_with_other_content_is_recorded_as_a_conflict(
    stack: Stack,
) -> None:
    key = f"order-{uuid.uuid4().hex}"
    first = stack.post({"order": key, "amount": 10}, headers={"Idempotency-Key": key})
    assert first.status_code == 200, first.text
    stack.wait_drained(timeout=60)
    retry = stack.post({"order": key, "amount": 10, "retry": 1}, headers={"Idempotency-Key": key})
    assert retry.status_code == 200, retry.text
    stack.wait_drained(timeout=60)

    rows = stack.query(
        f"SELECT toString(event_id), toString(original_event_id), toString(kind)"
        f" FROM `{stack.database}`.event_duplicates FINAL"
    )
    assert rows == [(retry.json()["event_id"], first.json()["event_id"], "key_conflict")]
    assert_accounting_invariant(
        [UUID(first.json()["event_id"]), UUID(retry.json()["event_id"])], stack.accounting()
    )


def test_the_worker_stores_the_standard_fields_as_columns_on_the_server(stack: Stack) -> None:
    run = uuid.uuid4().hex
    batch = [
        {"type": "track", "event": "Signed Up", "userId": "u-1", "timestamp": "2026-11-29T12:00Z"},
        {"type": "page", "name": "Pricing", "anonymousId": f"a-{run}", "timestamp": "soon"},
        {"type": "identify", "userId": 42, "run": run},
        {"action": "click", "run": run},
    ]
    response = stack.post(batch, batch=True)
    assert response.status_code == 200, response.text
    stack.wait_drained(timeout=60)

    rows = stack.query(
        "SELECT type, event, user_id, anonymous_id, timestamp, toString(timestamp)"
        f" FROM `{stack.database}`.events FINAL ORDER BY type DESC"
    )
    assert rows == [
        (
            "track",
            "Signed Up",
            "u-1",
            "",
            datetime(2026, 11, 29, 12, tzinfo=UTC),
            "2026-11-29 12:00:00",
        ),
        ("page", "Pricing", "", f"a-{run}", None, None),
        ("identify", "", "42", "", None, None),
        ("", "", "", "", None, None),
    ]
    signed_up = f"SELECT count() FROM `{stack.database}`.events WHERE event = 'Signed Up'"
    assert stack.query(signed_up) == [(1,)]


def test_bad_input_is_refused_and_stores_nothing(stack: Stack) -> None:
    client = httpx.Client(base_url=stack.base_url, timeout=10)
    bad = [
        client.post(
            "/service-event/", content=b"{not json", headers={"Content-Type": "application/json"}
        ),
        client.post(
            "/service-event/", content=b"[1, 2]", headers={"Content-Type": "application/json"}
        ),
        client.post("/service-event/batch", json=[{"a": 1}, 7]),
        client.post("/service-event/batch", json=[]),
        client.post(
            "/service-event/", content=b"\xff\xfe", headers={"Content-Type": "application/json"}
        ),
    ]
    assert [r.status_code for r in bad] == [400, 400, 400, 400, 400], [r.text for r in bad]
    assert all(r.json()["error"] and r.json()["detail"] for r in bad)
    assert bad[2].json()["index"] == 1
    assert client.get("/health/ready").status_code == 200
    stack.wait_drained(timeout=30)
    assert stack.accounting().events == ()
