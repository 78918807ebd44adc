"""What the ingest controllers tell OpenAPI that Litestar cannot infer: bodies read by hand."""

from __future__ import annotations

from dataclasses import dataclass

from dedup.adapters.inbound.http.errors import ErrorBody
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema


def error_response(description: str) -> ResponseSpec:
    """An error answer (ErrorBody) described by the codes it may carry."""
    return ResponseSpec(data_container=ErrorBody, description=description, generate_examples=False)


def operation_with_body(schema: Schema) -> type[Operation]:
    """An operation class declaring a JSON request body of this shape.

    The handlers read the body themselves (no Litestar data parsing on the hot path), so the
    request body is declared to OpenAPI here instead.
    """

    @dataclass
    class _WithBody(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                content={"application/json": OpenAPIMediaType(schema=schema)}, required=True
            )

    return _WithBody
