"""StoreQuery on ClickHouse, server or chDB: the engine's readonly setting does the refusing."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from attrs import frozen
from dedup.adapters.outbound.clickhouse.executor import READONLY, Executor, StatementError
from dedup.application.ports import StoreQuery
from dedup.domain.query import QueryLimits, QueryRefusedError, QueryResult, Refusal, ResultColumn

# ClickHouse's codes for a statement stopped at its time limit.
_TIMEOUT = frozenset({159})  # TIMEOUT_EXCEEDED


def _timestamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")  # ClickHouse's text, in the column's zone


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")  # as chDB's validated JSON writes it


_CONVERSIONS: tuple[tuple[type | tuple[type, ...], Callable[[Any], object]], ...] = (
    (bytes, _text),
    (datetime, _timestamp),
    (date, date.isoformat),
    ((list, tuple), lambda items: [json_value(item) for item in items]),
    (Mapping, lambda pairs: {str(json_value(k)): json_value(v) for k, v in pairs.items()}),
)


def json_value(value: Any) -> object:
    """A value as the server's driver or chDB's JSON gives it, as a JSON value."""
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity; chDB's JSON writes them as null too
    if value is None or isinstance(value, bool | int | float | str):
        return value
    for kind, convert in _CONVERSIONS:
        if isinstance(value, kind):
            return convert(value)
    return str(value)  # UUID, Decimal, IPv4Address...: their text, as ClickHouse writes it


def refusal_of(error: StatementError) -> QueryRefusedError:
    if error.code == READONLY:
        refusal = Refusal.WRITES
    elif error.code in _TIMEOUT:
        refusal = Refusal.TIMEOUT
    else:
        refusal = Refusal.INVALID
    return QueryRefusedError(error.message, refusal=refusal)


@frozen
class ClickHouseStoreQuery(StoreQuery):
    """One statement under readonly=1, the row limit and the time limit, on its own executor."""

    executor: Executor

    def run(self, sql: str, *, limits: QueryLimits) -> QueryResult:
        settings: dict[str, int | str] = {
            # `break` stops reading past the limit at a block's end; the cut is exact below.
            "max_result_rows": limits.rows,
            "result_overflow_mode": "break",
            "max_execution_time": limits.seconds,
        }
        try:
            answer = self.executor.read_only(sql, settings=settings)
        except StatementError as exc:
            raise refusal_of(exc) from exc
        columns = [ResultColumn(name=name, type=spelling) for name, spelling in answer.columns]
        # One row past the limit is enough for the answer to say it was cut.
        rows = [[json_value(value) for value in row] for row in answer.rows[: limits.rows + 1]]
        return QueryResult.cut(columns, rows, limit=limits.rows)
