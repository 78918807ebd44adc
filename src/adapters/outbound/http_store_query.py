"""StoreQuery through a running `dedup serve`: POST /admin/query, for when it holds the store."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from attrs import frozen
from dedup.application.ports import StoreQuery
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.query import QueryLimits, QueryRefusedError, QueryResult, Refusal, ResultColumn

BACKEND = "dedup service"


class NoServiceError(BackendUnavailableError):
    """Nothing answers at the address: no service holds the store there."""


# The error codes POST /admin/query answers a refused query with.
_REFUSALS = {
    "read_only": Refusal.WRITES,
    "invalid_query": Refusal.INVALID,
    "query_timeout": Refusal.TIMEOUT,
}


def result_from_answer(answer: Mapping[str, Any]) -> QueryResult:
    columns = tuple(ResultColumn(name=c["name"], type=c["type"]) for c in answer["columns"])
    rows = tuple(tuple(row) for row in answer["rows"])
    return QueryResult(columns, rows, truncated=bool(answer["truncated"]))


def refusal_from_answer(status: int, body: bytes) -> QueryRefusedError:
    try:
        error = json.loads(body)
        code, detail = str(error["error"]), str(error["detail"])
    except (ValueError, KeyError, TypeError):
        code, detail = f"http_{status}", body.decode(errors="replace")[:200]
    return QueryRefusedError(detail, refusal=_REFUSALS.get(code, Refusal.DENIED))


@frozen
class HttpStoreQuery(StoreQuery):
    """The service at `base_url` runs the query under its own limits, at most `limits.rows`."""

    base_url: str
    admin_key: str | None = None
    timeout: float = 120.0  # longer than any time limit the service puts on a query

    def run(self, sql: str, *, limits: QueryLimits) -> QueryResult:
        headers = {"Content-Type": "application/json"}
        if self.admin_key:
            # http.client sends a str header as latin-1; the service reads the key's UTF-8.
            utf8 = self.admin_key.encode("utf-8", errors="surrogateescape")
            headers["X-Admin-Key"] = utf8.decode("latin-1")
        request = urllib.request.Request(
            self.base_url.rstrip("/") + "/admin/query",
            data=json.dumps({"sql": sql, "limit": limits.rows}).encode(),
            headers=headers,
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                detail = f"{self.base_url} answered {exc.code}: {exc.read()[:200]!r}"
                raise BackendUnavailableError(BACKEND, detail) from exc
            raise refusal_from_answer(exc.code, exc.read()) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise NoServiceError(BACKEND, f"nothing answers at {self.base_url}") from exc
        return result_from_answer(answer)
