"""The Executor: what the ClickHouse adapter needs from an engine, a server or chDB alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dedup.adapters.outbound.clickhouse.mappers import Row
from dedup.adapters.outbound.clickhouse.miniorm import Statement, Table

# The backend every engine failure is reported as.
BACKEND = "clickhouse"


class Executor(Protocol):
    """One ClickHouse engine; a failure surfaces as BackendUnavailableError("clickhouse"), or
    as PoisonEventError when an insert is refused for its rows (clickhouse/errors.py)."""

    def query(self, statement: Statement) -> list[Row]:
        """The rows of a SELECT, as Python values (str, bytes, UUID, aware UTC datetime, int)."""
        ...

    def execute(self, statement: Statement) -> None:
        """Run a statement that returns nothing worth reading (DDL, INSERT ... SELECT)."""
        ...

    def insert(self, database: str, table: Table, rows: Sequence[Row]) -> None:
        """Insert rows given in the table's column order, in one INSERT."""
        ...

    def close(self) -> None: ...
