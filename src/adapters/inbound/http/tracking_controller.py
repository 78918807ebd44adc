"""The Tracking API of Segment and RudderStack: POST /v1/<type> and /v1/batch into AcceptEvents.

The same use case, group commit and worker as /service-event/: only the reading differs. A
message's `messageId` is its identity within its source; without one, its content is, less the
`sentAt` the SDKs restamp on every attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from dedup.adapters.inbound.http.auth import WriteKeys
from dedup.adapters.inbound.http.body import BodyReader
from dedup.adapters.inbound.http.errors import ErrorBody, RequestRejectedError
from dedup.adapters.inbound.http.tracking_messages import (
    BATCH_BYTES,
    MESSAGE_BYTES,
    RESENT_FIELDS,
    SHORT_PATHS,
    TYPES,
    Payload,
    TrackedMessage,
    batch_messages,
    one_message,
    write_key_in,
)
from dedup.adapters.metrics import record_tracked
from dedup.application.accept_events import AcceptEvents
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)

_TYPE_OF_PATH = {kind: kind for kind in TYPES} | SHORT_PATHS
ONE_PATHS = sorted(f"/{name}" for name in _TYPE_OF_PATH)
BATCH_PATHS = ["/batch", "/import", "/b"]  # /b: analytics.js in its batching mode


class TrackingAccepted(msgspec.Struct):
    """Every message is durably queued (a duplicate too: dedup records it)."""

    success: bool


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorBody, description=description, generate_examples=False)


_ERRORS = {
    400: _error(
        "invalid_json, not_an_object, invalid_batch, invalid_type, type_mismatch, missing_user,"
        " missing_field, invalid_field, invalid_message_id, message_too_large (32 KB),"
        " batch_too_large (500 KB or DEDUP_MAX_BATCH messages), too_deep or invalid_encoding;"
        " `index` names the batch item"
    ),
    401: _error("unauthorized: the write key (HTTP Basic user or writeKey) is missing or wrong"),
    415: _error("unsupported_media_type or unsupported_encoding"),
    503: _error("service_unavailable: the broker is unreachable; retry after Retry-After"),
}

_ID = Schema(one_of=[Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.NUMBER)])
_OBJECT = Schema(type=OpenAPIType.OBJECT)
_MESSAGE = Schema(
    type=OpenAPIType.OBJECT,
    description="A Segment spec message: userId or anonymousId (alias: userId and previousId).",
    properties={
        "type": Schema(type=OpenAPIType.STRING, enum=sorted(TYPES)),
        "messageId": Schema(type=OpenAPIType.STRING, description="its identity in its source"),
        "userId": _ID,
        "anonymousId": _ID,
        "previousId": _ID,
        "groupId": _ID,
        "event": Schema(type=OpenAPIType.STRING, description="the action, required by track"),
        "name": Schema(type=OpenAPIType.STRING),
        "properties": _OBJECT,
        "traits": _OBJECT,
        "context": _OBJECT,
        "integrations": _OBJECT,
        "timestamp": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE_TIME),
        "sentAt": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE_TIME),
        "writeKey": Schema(type=OpenAPIType.STRING, description="or send it as Basic user"),
    },
)
_BATCH = Schema(
    type=OpenAPIType.OBJECT,
    required=["batch"],
    properties={
        "batch": Schema(type=OpenAPIType.ARRAY, items=_MESSAGE, min_items=1),
        "context": Schema(type=OpenAPIType.OBJECT, description="merged into every message"),
        "integrations": Schema(type=OpenAPIType.OBJECT, description="merged into every message"),
        "writeKey": Schema(type=OpenAPIType.STRING),
        "sentAt": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE_TIME),
    },
)


def _json_body(schema: Schema) -> RequestBody:
    return RequestBody(content={"application/json": OpenAPIMediaType(schema=schema)}, required=True)


# The handlers read the body themselves, so OpenAPI learns its shape here.
@dataclass
class _MessageOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = _json_body(_MESSAGE)


@dataclass
class _BatchOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = _json_body(_BATCH)


async def _body(request: Request[Any, Any, Any], *, limit: int, code: str) -> tuple[Payload, int]:
    """The body as an object; over Segment's limit it is a 400, as the SDKs expect."""
    body_reader: BodyReader = request.app.state.body_reader
    try:
        return await body_reader.read_sized_object(request, limit=limit)
    except RequestRejectedError as exc:
        if exc.code != "body_too_large":
            raise
        detail = f"the request is larger than {min(limit, body_reader.max_body_bytes)} bytes"
        raise RequestRejectedError(400, code, detail) from None


def _source(request: Request[Any, Any, Any], body: Payload) -> str:
    """Who sent it, checked before the messages are: a stranger learns nothing of them."""
    write_keys: WriteKeys = request.app.state.write_keys
    return write_keys.source_of_tracking(request.headers, write_key_in(body))


async def _accept(
    accept_events: AcceptEvents, messages: list[TrackedMessage], *, source: str
) -> TrackingAccepted:
    await accept_events.execute(
        [message.payload for message in messages],
        source=source,
        keys=[message.key for message in messages],
        resent_fields=RESENT_FIELDS,
    )
    record_tracked([message.type for message in messages], source=source)
    return TrackingAccepted(success=True)


class TrackingController(Controller):
    """Segment's HTTP Tracking API: one message per path type, or a batch."""

    path = "/v1"
    tags = ["tracking"]  # noqa: RUF012 - Litestar reads this class attribute

    @post(
        ONE_PATHS,
        status_code=200,
        summary="Accept one message; the path names its type (/v1/t is /v1/track)",
        responses=_ERRORS,
        operation_class=_MessageOperation,
    )
    async def accept_message(
        self, request: Request[Any, Any, Any], accept_events: NamedDependency[AcceptEvents]
    ) -> TrackingAccepted:
        path_type = _TYPE_OF_PATH[request.url.path.rstrip("/").rpartition("/")[2]]
        body, _size = await _body(request, limit=MESSAGE_BYTES, code="message_too_large")
        source = _source(request, body)
        message = one_message(body, path_type=path_type)
        return await _accept(accept_events, [message], source=source)

    @post(
        BATCH_PATHS,
        status_code=200,
        summary="Accept a batch of messages, all or none",
        responses=_ERRORS,
        operation_class=_BatchOperation,
    )
    async def accept_batch(
        self, request: Request[Any, Any, Any], accept_events: NamedDependency[AcceptEvents]
    ) -> TrackingAccepted:
        body, size = await _body(request, limit=BATCH_BYTES, code="batch_too_large")
        source = _source(request, body)
        body_reader: BodyReader = request.app.state.body_reader
        messages = batch_messages(body, max_batch=body_reader.max_batch, whole_bytes=size)
        return await _accept(accept_events, messages, source=source)
