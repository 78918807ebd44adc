"""The one table that maps every error to an HTTP answer of the form {"error", "detail"}."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import msgspec
from dedup.adapters.metrics import record_rejected
from dedup.domain.errors import BackendUnavailableError, InvalidEventError, PoisonEventError
from dedup.domain.query import QueryRefusedError, Refusal
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap

logger = logging.getLogger(__name__)


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """What every 4xx/5xx answer says: a stable code, a sentence, and the bad batch item.

    On the Tracking API (/v1/) the code and the sentence also come as `code` and `message`,
    the fields Segment's SDKs read from an error.
    """

    error: str
    detail: str
    index: int | None = None
    code: str | None = None
    message: str | None = None


TRACKING_PREFIX = "/v1/"


class RequestRejectedError(Exception):
    """The request cannot be taken as sent; the client has to change it."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        index: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.index = index
        self.headers = headers


# Codes for what Litestar itself raises (routing, its own body limit, bad Content-Length).
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def _answer(
    request: Request[Any, Any, Any],
    status: int,
    body: ErrorBody,
    headers: Mapping[str, str] | None = None,
) -> Response[ErrorBody]:
    record_rejected(body.error)  # every error answer passes here, so the count is complete
    if request.url.path.startswith(TRACKING_PREFIX):
        body = ErrorBody(body.error, body.detail, body.index, code=body.error, message=body.detail)
    return Response(content=body, status_code=status, headers=dict(headers or {}))


def _rejected(request: Request[Any, Any, Any], exc: RequestRejectedError) -> Response[ErrorBody]:
    return _answer(request, exc.status, ErrorBody(exc.code, exc.detail, exc.index), exc.headers)


def _invalid_event(request: Request[Any, Any, Any], exc: InvalidEventError) -> Response[ErrorBody]:
    return _answer(request, 422, ErrorBody("invalid_event", exc.reason, exc.index))


def _poison(request: Request[Any, Any, Any], exc: PoisonEventError) -> Response[ErrorBody]:
    # Valid JSON the store still cannot take: worth a look, as our validation let it through.
    logger.warning("answering 422, an event can never be stored: %s", exc)
    detail = f"the event can never be stored as sent: {exc.reason}"
    return _answer(request, 422, ErrorBody("event_refused", detail))


# What each refusal answers: the request has to change, as retrying cannot help.
_REFUSALS = {
    Refusal.WRITES: (403, "read_only"),
    Refusal.INVALID: (400, "invalid_query"),
    Refusal.TIMEOUT: (422, "query_timeout"),
    Refusal.DENIED: (403, "forbidden"),
}


def _query_refused(request: Request[Any, Any, Any], exc: QueryRefusedError) -> Response[ErrorBody]:
    status, code = _REFUSALS[exc.refusal]
    return _answer(request, status, ErrorBody(code, f"the store refused the query: {exc.reason}"))


def _unavailable(
    request: Request[Any, Any, Any], exc: BackendUnavailableError
) -> Response[ErrorBody]:
    logger.warning("answering 503: %s", exc)
    # Safe to retry at once: a resent event is recognised as the same event.
    detail = f"the {exc.backend} is unavailable; retry the request"
    return _answer(request, 503, ErrorBody("service_unavailable", detail), {"Retry-After": "1"})


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    status = exc.status_code
    if status >= 500:
        return _unexpected(request, exc)
    if status == 404:
        detail = f"no resource at {request.url.path}"
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    elif status == 413:
        detail = "the request body is larger than the limit"
    else:
        detail = exc.detail
    code = _HTTP_CODES.get(status, f"http_{status}")
    return _answer(request, status, ErrorBody(code, detail), exc.headers)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    # The traceback goes to the log, never to the client.
    logger.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    detail = "the server failed; the error was logged"
    return _answer(request, 500, ErrorBody("internal_error", detail))


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    RequestRejectedError: _rejected,
    InvalidEventError: _invalid_event,
    PoisonEventError: _poison,
    QueryRefusedError: _query_refused,
    BackendUnavailableError: _unavailable,
    HTTPException: _http,
    Exception: _unexpected,
}
