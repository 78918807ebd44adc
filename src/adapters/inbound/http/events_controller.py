"""POST /service-event/ and /service-event/batch: read, call AcceptEvents once, answer."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from dedup.adapters.inbound.http.auth import WriteKeys
from dedup.adapters.inbound.http.body import BodyReader, idempotency_key
from dedup.adapters.inbound.http.openapi_docs import error_response, operation_with_body
from dedup.adapters.metrics import record_accepted
from dedup.application.accept_events import AcceptEvents
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIType, Schema


class EventAccepted(msgspec.Struct):
    """The event is durably queued (a duplicate is accepted too; dedup records it)."""

    message: str
    event_id: UUID


class BatchAccepted(msgspec.Struct):
    """Every event of the batch is durably queued; ids in the order of the items."""

    message: str
    event_ids: list[UUID]


_ERRORS = {
    400: error_response(
        "invalid_json, not_an_object, not_an_array, empty_batch, too_deep, "
        "invalid_encoding or invalid_idempotency_key"
    ),
    401: error_response("unauthorized: a write key is required and was missing or wrong"),
    413: error_response("body_too_large (after decompression) or batch_too_large"),
    415: error_response("unsupported_media_type or unsupported_encoding"),
    422: error_response(
        "invalid_event: the object is JSON but not an acceptable event; "
        "event_refused: an event the store can never take as sent"
    ),
    503: error_response("service_unavailable: the broker is unreachable; retry after Retry-After"),
}


_ONE_EVENT = operation_with_body(Schema(type=OpenAPIType.OBJECT))
_BATCH = operation_with_body(
    Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT), min_items=1)
)


def _sender(request: Request[Any, Any, Any]) -> tuple[BodyReader, str, str | None]:
    """What an ingest request brings besides its body: the reader, its source and its key."""
    write_keys: WriteKeys = request.app.state.write_keys
    return (
        request.app.state.body_reader,
        write_keys.source_of(request.headers),
        (idempotency_key(request.headers)),
    )


class EventsController(Controller):
    """Ingest: one event or a batch, queued durably before the answer."""

    path = "/service-event"
    tags = ["events"]  # noqa: RUF012 - Litestar reads this class attribute

    @post(
        "/",
        status_code=200,
        summary="Accept one event",
        responses=_ERRORS,
        operation_class=_ONE_EVENT,
    )
    async def accept_event(
        self, request: Request[Any, Any, Any], accept_events: NamedDependency[AcceptEvents]
    ) -> EventAccepted:
        body_reader, source, key = _sender(request)
        payload = await body_reader.read_object(request)
        [event_id] = await accept_events.execute([payload], source=source, key=key)
        record_accepted(1, batch=False)
        return EventAccepted(message="ok", event_id=event_id)

    @post(
        "/batch",
        status_code=200,
        summary="Accept a batch of events, all or none",
        responses=_ERRORS,
        operation_class=_BATCH,
    )
    async def accept_batch(
        self, request: Request[Any, Any, Any], accept_events: NamedDependency[AcceptEvents]
    ) -> BatchAccepted:
        body_reader, source, key = _sender(request)
        payloads = await body_reader.read_array(request)
        event_ids = await accept_events.execute(payloads, source=source, key=key, batch=True)
        record_accepted(len(event_ids), batch=True)
        return BatchAccepted(message="ok", event_ids=list(event_ids))
