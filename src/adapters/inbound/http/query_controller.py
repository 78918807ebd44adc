"""POST /admin/query: one read-only statement on the store, answered as JSON."""

from __future__ import annotations

import msgspec
from dedup.adapters.inbound.http.admin_guard import admin_only
from dedup.adapters.inbound.http.errors import ErrorBody
from dedup.application.run_query import RunQuery
from dedup.domain.query import QueryResult
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody


class QueryRequest(msgspec.Struct, forbid_unknown_fields=True):
    sql: str
    limit: int | None = None  # rows at most; the service's default when left out


class AnswerColumn(msgspec.Struct):
    name: str
    type: str


class QueryAnswer(msgspec.Struct):
    """The first rows of the answer; `truncated` says the statement had more than the limit."""

    columns: list[AnswerColumn]
    rows: list[list[object]]
    truncated: bool


def answer_of(result: QueryResult) -> QueryAnswer:
    return QueryAnswer(
        columns=[AnswerColumn(name=c.name, type=c.type) for c in result.columns],
        rows=[list(row) for row in result.rows],
        truncated=result.truncated,
    )


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorBody, description=description, generate_examples=False)


_ERRORS = {
    400: _error("invalid_query: not one statement the store can run (syntax, names, two)"),
    401: _error("unauthorized: neither from this machine nor carrying DEDUP_ADMIN_KEY"),
    403: _error("read_only: the statement would write; forbidden: a wrong admin key"),
    415: _error("unsupported_media_type: the body must be application/json"),
    422: _error("query_timeout: the statement ran past the time limit and was stopped"),
    503: _error("service_unavailable: the store is unreachable"),
}


class QueryController(Controller):
    """Read what is stored while the service holds the store (the embedded profile's chDB)."""

    path = "/admin"
    tags = ["admin"]  # noqa: RUF012 - Litestar reads these class attributes
    guards = [admin_only]  # noqa: RUF012

    # A driver call blocks: it runs in a worker thread, off the event loop that ingests.
    @post(
        "/query",
        status_code=200,
        summary="Run one read-only query",
        responses=_ERRORS,
        sync_to_thread=True,
    )
    def query(
        self, data: JSONBody[QueryRequest], run_query: NamedDependency[RunQuery]
    ) -> QueryAnswer:
        return answer_of(run_query.execute(data.sql, rows=data.limit))
