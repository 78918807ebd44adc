"""The Executor on chDB: ClickHouse inside this process, one engine bound to one path."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from attrs import define, field
from dedup.adapters.outbound.clickhouse import rowbinary
from dedup.adapters.outbound.clickhouse.errors import code_in, engine_error
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.mappers import Row, utc
from dedup.adapters.outbound.clickhouse.miniorm import Param, Statement, Table, ident, qualified
from dedup.adapters.outbound.clickhouse.store_lock import STORE_LOCKS


def _quoted(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return "'" + chdb_param(value).replace("'", "\\'") + "'"


def chdb_param(value: Any) -> str:
    """A bound value as the text chDB parses into its declared `{name:Type}`."""
    if isinstance(value, bytes):
        return "".join(f"\\x{byte:02X}" for byte in value)
    if isinstance(value, str):
        # The parameter text is read in ClickHouse's escaped format: a backslash starts an escape.
        return (
            value.replace("\\", "\\\\")
            .replace("\n", "\\n")
            .replace("\t", "\\t")
            .replace("\r", "\\r")
            .replace("\0", "\\0")
        )
    if isinstance(value, datetime):
        return utc(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, tuple):
        return "[" + ",".join(_quoted(item) for item in value) + "]"
    if isinstance(value, int | UUID) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"cannot bind {type(value).__name__}")


def _placeholder(name: str, param: Param) -> str:
    return "{" + name + ":" + param.type.sql + "}"


@contextmanager
def _engine_errors(*, inserting: bool = False) -> Iterator[None]:
    """chDB's failures, as the domain errors every Executor raises."""
    import chdb

    try:
        yield
    except (RuntimeError, chdb.ChdbError, OSError) as exc:
        raise engine_error(exc, code=code_in(str(exc)), inserting=inserting) from exc


@define
class ChdbExecutor(Executor):
    """ClickHouse in this process (chDB); one engine per process, bound to one path at a time."""

    path: str
    _session: Any = field(default=None, init=False)
    # One engine per process, driven by the queue thread and readiness probes: one at a time.
    _lock: threading.RLock = field(factory=threading.RLock, init=False)

    def _engine(self) -> Any:
        if self._session is None:
            from chdb import session

            STORE_LOCKS.acquire(self.path)
            try:
                self._session = session.Session(self.path)  # type: ignore[no-untyped-call]
            except BaseException:
                STORE_LOCKS.release(self.path)
                raise
        return self._session

    def _run(self, sql: str, params: dict[str, Param], fmt: str) -> Any:
        with _engine_errors(), self._lock:
            return self._engine().query(
                sql, fmt, params={name: chdb_param(p.value) for name, p in params.items()}
            )

    def query(self, statement: Statement) -> list[Row]:
        sql, params = statement.render(_placeholder)
        result = self._run(sql, params, "RowBinaryWithNamesAndTypes")
        _types, rows = rowbinary.decode_with_names_and_types(result.bytes())
        return rows

    def execute(self, statement: Statement) -> None:
        sql, params = statement.render(_placeholder)
        self._run(sql, params, "TSV")

    def insert(self, database: str, table: Table, rows: Sequence[Row]) -> None:
        data = rowbinary.encode([column.type for column in table.columns], rows)
        names = ", ".join(ident(name) for name in table.names)
        sql = f"INSERT INTO {qualified(database, table.name)} ({names})"
        with (
            _engine_errors(inserting=True),
            self._lock,
            self._engine().send_insert(sql, "RowBinary") as inserter,
        ):
            inserter.append(data)
            inserter.finish()

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None
                STORE_LOCKS.release(self.path)
