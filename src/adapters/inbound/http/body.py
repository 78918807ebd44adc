"""Reading an ingest body: header checks, size limit, gzip, msgspec decoding, shape and depth."""

from __future__ import annotations

import re
import zlib
from typing import Any

import msgspec
from attrs import frozen
from dedup.adapters.inbound.http.errors import RequestRejectedError
from litestar import Request
from litestar.datastructures import Headers
from litestar.exceptions import HTTPException

# One decoder for the process: building it per request costs more than decoding a small event.
_DECODER = msgspec.json.Decoder()
_GZIP = zlib.MAX_WBITS | 16
_KEY = re.compile(r"[\x20-\x7e]{1,255}")
_CHARSET = re.compile(r"charset\s*=\s*\"?([\w-]+)", re.IGNORECASE)

Payload = dict[str, Any]


def _too_large(limit: int) -> RequestRejectedError:
    return RequestRejectedError(
        413, "body_too_large", f"the request body is larger than {limit} bytes"
    )


def _bad_gzip(why: str) -> RequestRejectedError:
    return RequestRejectedError(400, "invalid_encoding", f"the gzip body is corrupt: {why}")


def _too_deep(limit: int, index: int | None = None) -> RequestRejectedError:
    return RequestRejectedError(
        400, "too_deep", f"the JSON nests deeper than {limit} levels", index=index
    )


def idempotency_key(headers: Headers) -> str | None:
    """The request's Idempotency-Key: absent, or 1..255 printable ASCII characters."""
    key = headers.get("idempotency-key")
    if key is None:
        return None
    if not _KEY.fullmatch(key) or key.isspace():
        raise RequestRejectedError(
            400,
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
        )
    return key


# Browsers' sendBeacon sends text/plain and `curl -d` sends a form type: both carry JSON here.
_JSON_CARRIERS = frozenset({"application/json", "text/plain", "application/x-www-form-urlencoded"})


def _is_gzip(headers: Headers) -> bool:
    """Refuse a non-JSON Content-Type or an unknown Content-Encoding; say whether it is gzip."""
    content_type = headers.get("content-type")
    if content_type is not None:
        media, _, params = content_type.partition(";")
        media = media.strip().lower()
        charset = _CHARSET.search(params) if params else None
        if not (media in _JSON_CARRIERS or media.endswith("+json")) or (
            charset is not None and charset.group(1).lower() not in {"utf-8", "utf8", "us-ascii"}
        ):
            raise RequestRejectedError(
                415, "unsupported_media_type", "send the body as application/json (UTF-8)"
            )
    encoding = (headers.get("content-encoding") or "identity").strip().lower()
    if encoding in {"", "identity"}:
        return False
    if encoding in {"gzip", "x-gzip"}:
        return True
    raise RequestRejectedError(
        415, "unsupported_encoding", "Content-Encoding must be identity or gzip"
    )


class _Gunzip:
    """Incremental gunzip that stops as soon as the output passes the limit."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._room = limit
        self._inflater = zlib.decompressobj(_GZIP)

    def feed(self, data: bytes) -> bytes:
        parts = []
        while data:
            if self._inflater.eof:  # a further gzip member follows (RFC 1952 allows several)
                self._inflater = zlib.decompressobj(_GZIP)
            try:
                # One byte beyond the room is enough to know the body is too large.
                part = self._inflater.decompress(data, self._room + 1)
            except zlib.error as exc:
                raise _bad_gzip(str(exc)) from exc
            self._room -= len(part)
            if self._room < 0:
                raise _too_large(self._limit)
            parts.append(part)
            data = self._inflater.unconsumed_tail or self._inflater.unused_data
        return b"".join(parts)

    def finish(self) -> None:
        if not self._inflater.eof:
            raise _bad_gzip("the stream ends early")


def _deeper_than(value: dict[str, Any] | list[Any], limit: int) -> bool:
    """Whether a JSON value nests more than `limit` containers; iterative, never recursive."""
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


@frozen
class BodyReader:
    """Turns a request into payloads, or rejects it, within the configured limits."""

    max_body_bytes: int
    max_batch: int
    max_depth: int

    async def read_object(self, request: Request[Any, Any, Any]) -> Payload:
        """The body as one JSON object."""
        value, _size = await self.read_sized_object(request, limit=self.max_body_bytes)
        return value

    async def read_sized_object(
        self, request: Request[Any, Any, Any], *, limit: int
    ) -> tuple[Payload, int]:
        """The body as one JSON object within `limit` (and max_body_bytes), and its size."""
        raw = await self._read(request, min(limit, self.max_body_bytes))
        value = self._decode(raw)
        if not isinstance(value, dict):
            raise RequestRejectedError(400, "not_an_object", "the body must be one JSON object")
        # A body with no more brackets than the limit cannot nest deeper than it: skip the walk.
        if raw.count(b"{") + raw.count(b"[") > self.max_depth and _deeper_than(
            value, self.max_depth
        ):
            raise _too_deep(self.max_depth)
        return value, len(raw)

    async def read_array(self, request: Request[Any, Any, Any]) -> list[Payload]:
        """The body as a JSON array of 1..max_batch objects; errors name the bad item."""
        raw = await self._read(request, self.max_body_bytes)
        items = self._decode(raw)
        if not isinstance(items, list):
            raise RequestRejectedError(
                400, "not_an_array", "the body must be a JSON array of objects"
            )
        if not items:
            raise RequestRejectedError(400, "empty_batch", "the batch holds no events")
        if len(items) > self.max_batch:
            raise RequestRejectedError(
                413, "batch_too_large", f"a batch holds at most {self.max_batch} events"
            )
        check_depth = raw.count(b"{") + raw.count(b"[") > self.max_depth + 1
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise RequestRejectedError(
                    400, "not_an_object", "every batch item must be a JSON object", index=index
                )
            if check_depth and _deeper_than(item, self.max_depth):
                raise _too_deep(self.max_depth, index)
        return items

    def _decode(self, raw: bytes) -> Any:
        if not raw.strip():
            raise RequestRejectedError(400, "invalid_json", "the body is empty")
        try:
            return _DECODER.decode(raw)
        except RecursionError:
            # msgspec guards its recursion with the interpreter's limit; far past max_depth anyway.
            raise _too_deep(self.max_depth) from None
        except msgspec.DecodeError as exc:
            raise RequestRejectedError(
                400, "invalid_json", f"the body is not JSON: {exc}"
            ) from None

    async def _read(self, request: Request[Any, Any, Any], limit: int) -> bytes:
        gzip = _is_gzip(request.headers)
        announced = request.content_length
        if announced is not None and announced > limit:
            raise _too_large(limit)  # refused before a byte of the body is read
        gunzip = _Gunzip(limit) if gzip else None
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                data = gunzip.feed(chunk) if gunzip is not None else chunk
                size += len(data)
                if size > limit:
                    raise _too_large(limit)
                if data:
                    chunks.append(data)
        except HTTPException as exc:
            # Litestar counts the wire bytes against the same limit (request_max_body_size).
            if exc.status_code == 413:
                raise _too_large(limit) from None
            raise
        if gunzip is not None:
            gunzip.finish()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)  # one chunk: no copy
