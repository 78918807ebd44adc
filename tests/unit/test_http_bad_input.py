"""Bad input gets a JSON 4xx with a stable code, touches no queue, and leaves the server up."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from dedup.application.accept_events import AcceptEvents
from dedup.infrastructure.app import create_app
from dedup.infrastructure.ids import new_event_id
from litestar import Litestar
from litestar.testing import TestClient

from tests.fakes import FakeQueue

ONE = "/service-event/"
BATCH = "/service-event/batch"
LIMIT = 64 * 1024


def app_for(queue: FakeQueue) -> Litestar:
    accept_events = AcceptEvents(
        queue=queue, clock=lambda: datetime.now(UTC), new_id=new_event_id, id_field="message_id"
    )
    return create_app(accept_events=accept_events, probes={}, max_body_bytes=LIMIT, max_batch=3)


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()


@pytest.fixture
def client(queue: FakeQueue) -> Iterator[TestClient]:
    with TestClient(app_for(queue)) as client:
        yield client


def assert_rejected(response: Any, status: int, code: str, *, index: int | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    assert body.get("index") == index


def nested_object(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


BAD_BODIES = [
    pytest.param(ONE, b"{", (400, "invalid_json", None), id="truncated"),
    pytest.param(ONE, b"", (400, "invalid_json", None), id="empty"),
    pytest.param(ONE, b"  \n", (400, "invalid_json", None), id="blank"),
    pytest.param(ONE, b'{"a": "\xff"}', (400, "invalid_json", None), id="invalid-utf8"),
    pytest.param(ONE, b'{"a": "\\ud800"}', (400, "invalid_json", None), id="lone-surrogate"),
    pytest.param(ONE, b'{"a": NaN}', (400, "invalid_json", None), id="nan"),
    pytest.param(ONE, b'{"a": 1e400}', (400, "invalid_json", None), id="infinite-number"),
    pytest.param(ONE, b'{"a": 1} {"b": 2}', (400, "invalid_json", None), id="two-documents"),
    pytest.param(ONE, b"[1]", (400, "not_an_object", None), id="array"),
    pytest.param(ONE, b"null", (400, "not_an_object", None), id="null"),
    pytest.param(ONE, b'"text"', (400, "not_an_object", None), id="string"),
    pytest.param(BATCH, b'{"a": 1}', (400, "not_an_array", None), id="batch-object"),
    pytest.param(BATCH, b"[]", (400, "empty_batch", None), id="batch-empty"),
    pytest.param(BATCH, b'[{"a":1}, 2, {}]', (400, "not_an_object", 1), id="batch-item"),
    pytest.param(BATCH, b"[{},{},{},{}]", (413, "batch_too_large", None), id="batch-4-of-3"),
    pytest.param(BATCH, b"[{", (400, "invalid_json", None), id="batch-truncated"),
    pytest.param(ONE, nested_object(65), (400, "too_deep", None), id="depth-65"),
    pytest.param(ONE, b"[" * 50_000, (400, "too_deep", None), id="open-brackets"),
    pytest.param(
        BATCH, b"[{}, " + nested_object(65) + b"]", (400, "too_deep", 1), id="batch-item-depth"
    ),
    pytest.param(ONE, b'{"message_id": ""}', (422, "invalid_event", None), id="bad-id-field"),
    pytest.param(
        BATCH, b'[{"message_id": "x"}, {"message_id": true}]', (422, "invalid_event", 1),
        id="batch-bad-id-field",
    ),
]  # fmt: skip


@pytest.mark.parametrize("path, content, expected", BAD_BODIES)
def test_a_bad_body_is_rejected_with_its_code_and_nothing_is_queued(
    client, queue, path, content, expected
):
    status, code, index = expected
    response = client.post(path, content=content)

    assert_rejected(response, status, code, index=index)
    assert queue.queued == []
    assert client.post(ONE, json={"still": "up"}).status_code == 200


def test_nesting_up_to_the_limit_is_accepted(client, queue):
    assert client.post(ONE, content=nested_object(64)).status_code == 200
    assert client.post(BATCH, content=b"[" + nested_object(64) + b"]").status_code == 200
    assert len(queue.queued) == 2


@pytest.mark.parametrize("path", [ONE, BATCH])
def test_nesting_100000_levels_deep_is_refused_and_the_server_still_answers(queue, path):
    accept_events = AcceptEvents(queue=queue, clock=lambda: datetime.now(UTC), new_id=new_event_id)
    client = TestClient(create_app(accept_events=accept_events, probes={}))  # 1 MiB default
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    content = b"[" + deep + b"]" if path == BATCH else deep

    with client:
        assert_rejected(client.post(path, content=content), 400, "too_deep")
        assert client.post(ONE, json={"next": 1}).status_code == 200
    assert len(queue.queued) == 1


BAD_HEADERS = [
    pytest.param(
        {"Content-Type": "multipart/form-data; boundary=x"},
        (415, "unsupported_media_type"),
        id="multipart",
    ),
    pytest.param({"Content-Type": "application/xml"}, (415, "unsupported_media_type"), id="xml"),
    pytest.param(
        {"Content-Type": "application/json; charset=latin-1"}, (415, "unsupported_media_type"),
        id="charset",
    ),
    pytest.param({"Content-Encoding": "br"}, (415, "unsupported_encoding"), id="brotli"),
    pytest.param({"Content-Encoding": "gzip, gzip"}, (415, "unsupported_encoding"), id="stacked"),
    pytest.param({"Idempotency-Key": ""}, (400, "invalid_idempotency_key"), id="empty-key"),
    pytest.param({"Idempotency-Key": "k" * 256}, (400, "invalid_idempotency_key"), id="long-key"),
    pytest.param({"Idempotency-Key": "a\x01b"}, (400, "invalid_idempotency_key"), id="ctl-key"),
    pytest.param({"Idempotency-Key": b"caf\xe9"}, (400, "invalid_idempotency_key"), id="latin-key"),
    pytest.param({"Content-Length": "abc"}, (400, "bad_request"), id="bad-length"),
]  # fmt: skip


@pytest.mark.parametrize("path", [ONE, BATCH])
@pytest.mark.parametrize("headers, expected", BAD_HEADERS)
def test_bad_headers_are_rejected_with_their_code_and_nothing_is_queued(
    client, queue, path, headers, expected
):
    status, code = expected
    content = b'{"a": 1}' if path == ONE else b'[{"a": 1}]'
    response = client.post(path, content=content, headers=headers)

    assert_rejected(response, status, code)
    assert queue.queued == []


def test_an_idempotency_key_of_255_printable_characters_is_accepted(client, queue):
    response = client.post(ONE, json={"a": 1}, headers={"Idempotency-Key": "k y" * 85})

    assert response.status_code == 200
    assert len(queue.queued) == 1


def test_an_announced_length_over_the_limit_is_refused(client, queue):
    response = client.post(ONE, content=b"{}", headers={"Content-Length": str(10**12)})

    assert_rejected(response, 413, "body_too_large")
    assert queue.queued == []


@pytest.mark.parametrize("path", [ONE, BATCH])
def test_a_chunked_body_over_the_limit_is_refused(client, queue, path):
    def chunks() -> Iterator[bytes]:
        yield b'[{"a": "' if path == BATCH else b'{"a": "'
        for _ in range(LIMIT // 1024 + 1):
            yield b"x" * 1024
        yield b'"}]' if path == BATCH else b'"}'

    response = client.post(path, content=chunks())

    assert_rejected(response, 413, "body_too_large")
    assert queue.queued == []


@pytest.mark.parametrize("path", [ONE, BATCH])
def test_a_gzip_bomb_is_refused_after_the_limit_of_decompressed_bytes(client, queue, path):
    bomb = gzip.compress(b"[" + b" " * 10_000_000 + b"{}]")
    assert len(bomb) < 20_000

    response = client.post(path, content=bomb, headers={"Content-Encoding": "gzip"})

    assert_rejected(response, 413, "body_too_large")
    assert queue.queued == []


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"not gzip at all", id="garbage"),
        pytest.param(gzip.compress(b'{"a": 1}')[:-6], id="truncated"),
        pytest.param(gzip.compress(b'{"a": 1}') + b"trailing", id="trailing-garbage"),
        pytest.param(b"", id="empty"),
        pytest.param(zlib.compress(b'{"a": 1}'), id="zlib-not-gzip"),
    ],
)
def test_a_corrupt_gzip_body_is_rejected_as_invalid_encoding(client, queue, content):
    response = client.post(ONE, content=content, headers={"Content-Encoding": "gzip"})

    assert_rejected(response, 400, "invalid_encoding")
    assert queue.queued == []


def test_unknown_routes_and_methods_answer_json(client):
    assert_rejected(client.get("/nowhere"), 404, "not_found")
    assert_rejected(client.get(ONE), 405, "method_not_allowed")
    assert_rejected(client.put(BATCH, json=[]), 405, "method_not_allowed")


# Straight ASGI calls: here the test, not the client, decides what reaches the server and
# can count how much of the body the app pulled in.


async def call(app: Litestar, *, headers: list[tuple[bytes, bytes]], body: Iterator[bytes]):
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        chunk = next(body, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": ONE,
        "raw_path": ONE.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    return sent[0]["status"], pulled


def endless(chunk: bytes) -> Iterator[bytes]:
    while True:
        yield chunk


def test_a_huge_announced_length_is_refused_without_reading_the_body(queue):
    headers = [(b"content-length", str(10**12).encode())]

    status, pulled = anyio.run(
        lambda: call(app_for(queue), headers=headers, body=endless(b"x" * 4096))
    )

    assert (status, pulled) == (413, 0)
    assert queue.queued == []


def test_an_endless_chunked_body_is_read_no_further_than_the_limit(queue):
    status, pulled = anyio.run(lambda: call(app_for(queue), headers=[], body=endless(b"x" * 4096)))

    assert status == 413
    assert LIMIT < pulled <= LIMIT + 4096
    assert queue.queued == []


def test_an_endless_gzip_stream_is_decompressed_no_further_than_the_limit(queue):
    packer = zlib.compressobj(wbits=zlib.MAX_WBITS | 16)
    zeros = packer.compress(b"0" * 1_000_000) + packer.flush(zlib.Z_SYNC_FLUSH)
    headers = [(b"content-encoding", b"gzip")]

    status, pulled = anyio.run(lambda: call(app_for(queue), headers=headers, body=endless(zeros)))

    assert status == 413
    assert pulled <= len(zeros)  # 1 MB of output from one ~1 KB chunk already passes the limit
