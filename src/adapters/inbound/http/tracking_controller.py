"""The Tracking API of Segment and RudderStack: POST /v1/<type> and /v1/batch into AcceptEvents.

The same use case, group commit and worker as /service-event/: only the reading differs. A
message's `messageId` is its identity within its source; without one, its content is, less the
`sentAt` the SDKs restamp on every attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from dedup.adapters.inbound.http.auth import WriteKeys
from dedup.adapters.inbound.http.body import BodyReader
from dedup.adapters.inbound.http.errors import RequestRejectedError
from dedup.adapters.inbound.http.openapi_docs import error_response, operation_with_body
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
from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Schema

_TYPE_OF_PATH = {kind: kind for kind in TYPES} | SHORT_PATHS
ONE_PATHS = sorted(f"/{name}" for name in _TYPE_OF_PATH)
BATCH_PATHS = ["/batch", "/import", "/b"]  # /b: analytics.js in its batching mode


class TrackingAccepted(msgspec.Struct):
    """Every message is durably queued (a duplicate too: dedup records it)."""

    success: bool


_ERRORS = {
    400: error_response(
        "invalid_json, not_an_object, invalid_batch, invalid_type, type_mismatch, missing_user,"
        " missing_field, invalid_field, invalid_message_id, message_too_large (32 KB),"
        " batch_too_large (500 KB or DEDUP_MAX_BATCH messages), too_deep or invalid_encoding;"
        " `index` names the batch item"
    ),
    401: error_response(
        "unauthorized: the write key (HTTP Basic user or writeKey) is missing or wrong"
    ),
    415: error_response("unsupported_media_type or unsupported_encoding"),
    503: error_response("service_unavailable: the broker is unreachable; retry after Retry-After"),
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


Parse = Callable[[Payload, int], list[TrackedMessage]]
"""The messages of a body of that many bytes, or a 400 rejection."""


async def _accept(
    request: Request[Any, Any, Any],
    accept_events: AcceptEvents,
    parse: Parse,
    *,
    limit: int,
    too_large: str,
) -> TrackingAccepted:
    """Read, authenticate, parse, queue: the answer once every message is durably queued."""
    body_reader: BodyReader = request.app.state.body_reader
    try:
        body, size = await body_reader.read_sized_object(request, limit=limit)
    except RequestRejectedError as exc:
        if exc.code != "body_too_large":
            raise
        # Over Segment's limit is a 400, which the SDKs drop rather than retry.
        detail = f"the request is larger than {min(limit, body_reader.max_body_bytes)} bytes"
        raise RequestRejectedError(400, too_large, detail) from None
    # Who sent it is checked before what: a stranger learns nothing of the messages' rules.
    write_keys: WriteKeys = request.app.state.write_keys
    source = write_keys.source_of_tracking(request.headers, write_key_in(body))
    messages = parse(body, size)
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
        operation_class=operation_with_body(_MESSAGE),
    )
    async def accept_message(
        self, request: Request[Any, Any, Any], accept_events: NamedDependency[AcceptEvents]
    ) -> TrackingAccepted:
        path_type = _TYPE_OF_PATH[request.url.path.rstrip("/").rpartition("/")[2]]
        return await _accept(
            request,
            accept_events,
            lambda body, _size: [one_message(body, path_type=path_type)],
            limit=MESSAGE_BYTES,
            too_large="message_too_large",
        )

    @post(
        BATCH_PATHS,
        status_code=200,
        summary="Accept a batch of messages, all or none",
        responses=_ERRORS,
        operation_class=operation_with_body(_BATCH),
    )
    async def accept_batch(
        self, request: Request[Any, Any, Any], accept_events: NamedDependency[AcceptEvents]
    ) -> TrackingAccepted:
        max_batch = request.app.state.body_reader.max_batch
        return await _accept(
            request,
            accept_events,
            lambda body, size: batch_messages(body, max_batch=max_batch, whole_bytes=size),
            limit=BATCH_BYTES,
            too_large="batch_too_large",
        )
