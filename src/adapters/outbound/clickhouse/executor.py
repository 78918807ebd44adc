"""The Executor: what the ClickHouse adapter needs from an engine, a server or chDB alike."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from attrs import frozen
from dedup.adapters.outbound.clickhouse.mappers import Row
from dedup.adapters.outbound.clickhouse.miniorm import Statement, Table

# The backend every engine failure is reported as.
BACKEND = "clickhouse"

# ClickHouse's own error code for a statement refused because the settings say readonly.
READONLY = 164

_NOISE = re.compile(
    r"Code: \d+\. |DB::Exception: |\s*\((?:version [^)]*|[A-Z][A-Z_]+)\)\.?|\s*Stack trace:.*",
    re.DOTALL,
)


def engine_message(text: str) -> str:
    """What ClickHouse said, without its code prefix, exception class, version or stack trace."""
    return _NOISE.sub("", text).strip().splitlines()[0] if text.strip() else ""


class StatementError(Exception):
    """The engine answered, and refused the statement; `code` is ClickHouse's error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@frozen
class Answer:
    """What a statement written as text answered: (name, type) per column, and its rows."""

    columns: tuple[tuple[str, str], ...]
    rows: Sequence[Sequence[Any]]


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

    def read_only(self, sql: str, *, settings: Mapping[str, int | str]) -> Answer:
        """Run one statement, with readonly=1 on top of `settings`, inside the engine alone.

        Nothing else runs: not a second statement, not an output clause (INTO OUTFILE, FORMAT)
        a client would act on. StatementError when the engine refuses it.
        """
        ...

    def close(self) -> None: ...
