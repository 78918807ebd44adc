"""CORS for the ingest paths only: a page on an allowed origin may send events, nothing more.

Litestar's CORSConfig applies to every path of the app, the admin ones included (a page on an
allowed origin could then read POST /admin/query from a browser on the service's machine), so
the ingest routers carry this middleware instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import frozen
from litestar.datastructures import Headers, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)

# What browser SDKs send: analytics.js the write key as Basic and, on a retry, X-Retry-Count;
# RudderStack's JS SDK an AnonymousId header with every message.
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Content-Encoding",
    "X-Retry-Count",
    "Idempotency-Key",
    "X-API-Key",
    "AnonymousId",
)
_METHODS = "GET, POST, OPTIONS"
_MAX_AGE = "600"  # seconds a browser may reuse a preflight answer (Chromium caps it at 7200)
# analytics.js reads Retry-After to wait out a 503; CORS hides it from scripts unless named.
_EXPOSED = "Retry-After"


@frozen
class CorsPolicy:
    """The origins whose pages may post events: a set of exact origins, or any (`*`)."""

    origins: frozenset[str]
    any_origin: bool

    @classmethod
    def of(cls, origins: Iterable[str]) -> CorsPolicy:
        found = frozenset(origins)
        return cls(origins=found - {"*"}, any_origin="*" in found)

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin.lower() in self.origins

    def allow_origin(self, origin: str) -> str:
        return "*" if self.any_origin else origin


class IngestCors:
    """ASGI middleware: answers preflights and marks answers to an allowed origin."""

    def __init__(self, app: ASGIApp, *, policy: CorsPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        headers = Headers.from_scope(scope)
        origin = headers.get("origin")
        if origin is None or not self.policy.allows(origin):
            # A refused origin gets the answer without CORS headers: its browser withholds it.
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin, send)
            return
        await self.app(scope, receive, self._marking(origin, send))

    async def _preflight(self, origin: str, send: Send) -> None:
        answer = [
            (b"access-control-allow-origin", self.policy.allow_origin(origin).encode("latin-1")),
            (b"access-control-allow-methods", _METHODS.encode()),
            (b"access-control-allow-headers", ", ".join(ALLOWED_HEADERS).encode()),
            (b"access-control-max-age", _MAX_AGE.encode()),
            (b"vary", b"Origin"),
            (b"content-length", b"0"),
        ]
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": 204,
            "headers": answer,
        }
        body: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": b"",
            "more_body": False,
        }
        await send(start)
        await send(body)

    def _marking(self, origin: str, send: Send) -> Send:
        allow = self.policy.allow_origin(origin)

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                headers["Access-Control-Allow-Origin"] = allow
                headers["Access-Control-Expose-Headers"] = _EXPOSED
                headers.add("Vary", "Origin")
            await send(message)

        return marked
