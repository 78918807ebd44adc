"""RunQuery: one read-only statement on the store, within a row limit and a time limit."""

from __future__ import annotations

from attrs import frozen
from dedup.application.ports import StoreQuery
from dedup.domain.query import QueryLimits, QueryRefusedError, QueryResult, Refusal


@frozen
class RunQuery:
    """Answer a statement: its first `rows` (up to `max_rows`), stopped after `seconds`."""

    store: StoreQuery
    default_rows: int = 1000
    max_rows: int = 100_000
    seconds: int = 30

    def execute(self, sql: str, *, rows: int | None = None) -> QueryResult:
        if not sql.strip():
            raise QueryRefusedError("the query is empty", refusal=Refusal.INVALID)
        if rows is not None and not 0 < rows <= self.max_rows:
            detail = f"the row limit must be from 1 to {self.max_rows}, got {rows}"
            raise QueryRefusedError(detail, refusal=Refusal.INVALID)
        limits = QueryLimits(rows=rows or self.default_rows, seconds=self.seconds)
        return self.store.run(sql, limits=limits)
