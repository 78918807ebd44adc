"""The Executor on a ClickHouse server, over the native protocol (clickhouse-driver)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

from attrs import define, field
from dedup.adapters.outbound.clickhouse.column_types import (
    STRING,
    Array,
    ColumnType,
    FixedString,
    LowCardinality,
    Nullable,
    column_type,
)
from dedup.adapters.outbound.clickhouse.errors import engine_error
from dedup.adapters.outbound.clickhouse.executor import (
    Answer,
    Executor,
    StatementError,
    engine_message,
)
from dedup.adapters.outbound.clickhouse.mappers import Row, utc
from dedup.adapters.outbound.clickhouse.miniorm import Param, Statement, Table, ident, qualified


class _Verbatim:
    """Text clickhouse-driver puts into the query as is: it has no escaping for these types."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


_BYTE_ESCAPES = tuple(f"\\x{byte:02X}" for byte in range(256))


def server_value(value: Any) -> Any:
    """A bound value in the form clickhouse-driver's client-side substitution renders right."""
    if isinstance(value, bytes):
        # Only hex digits reach the SQL: every byte becomes a \xNN escape in a string literal.
        return _Verbatim("'" + "".join(map(_BYTE_ESCAPES.__getitem__, value)) + "'")
    if isinstance(value, datetime):
        return _Verbatim(f"toDateTime({int(utc(value).timestamp())})")
    if isinstance(value, str | int | UUID):
        return value  # the driver escapes these itself
    raise TypeError(f"cannot bind {type(value).__name__}")


def server_query(statement: Statement) -> tuple[str, dict[str, Any] | None, list[dict[str, Any]]]:
    """The SQL, its substituted values, and each bound set as an external table.

    A set (`column IN ...`, bound as `Array(T)`) travels beside the query as a temporary table
    in the native format rather than as literals in its text: the server neither parses
    thousands of literals nor limits their number (max_query_size), and one query scans the
    table once for a whole batch, where literal chunks would scan it once per chunk.
    """
    sets: list[dict[str, Any]] = []

    def placeholder(name: str, param: Param) -> str:
        if isinstance(param.type, Array):
            table = f"_{name}"
            sets.append(
                {
                    "name": table,
                    "structure": [("value", param.type.inner.sql)],
                    "data": [(value,) for value in param.value],
                }
            )
            return table
        return f"%({name})s"

    sql, params = statement.render(placeholder)
    values = {
        name: server_value(p.value) for name, p in params.items() if not isinstance(p.type, Array)
    }
    return sql, values or None, sets


def _from_server(value: Any, type_: ColumnType) -> Any:
    if isinstance(type_, Nullable | LowCardinality):
        return None if value is None else _from_server(value, type_.inner)
    # strings_as_bytes hands every string back as bytes; only FixedString is meant as bytes.
    if type_ == STRING:
        return value.decode()
    if isinstance(value, datetime):
        return utc(value)
    return value


# Types whose values the driver hands back as the Python values meant (bytes, UUID, int).
_AS_SENT = frozenset(
    {
        "UUID",
        "Float32",
        "Float64",
        *(f"{sign}Int{bits}" for sign in ("", "U") for bits in (8, 16, 32, 64)),
    }
)


def _reader(type_: ColumnType) -> Callable[[Any], Any] | None:
    """How a column's values are read, decided once per column; None: as the driver gave them."""
    if isinstance(type_, FixedString) or type_.sql in _AS_SENT:
        return None
    return partial(_from_server, type_=type_)


@define
class ServerExecutor(Executor):
    """A ClickHouse server over the native protocol; the client connects on first use."""

    host: str = "127.0.0.1"
    port: int = 9000
    user: str = "default"
    password: str = ""
    database: str = "default"  # where a name a statement leaves unqualified is looked up
    connect_timeout: float = 5.0
    receive_timeout: float = 300.0  # a statement that waits longer for the server fails
    alt_hosts: str = ""  # "h2:9000,h3:9000": where the client fails over to, in order
    settings: Mapping[str, int | str] = field(factory=dict)  # sent with every statement
    _client: Any = field(default=None, init=False)
    # One connection, not safe to share: the readiness probe and the writer take turns.
    _lock: threading.RLock = field(factory=threading.RLock, init=False)

    def _driver(self) -> Any:
        if self._client is None:
            from clickhouse_driver import Client  # type: ignore[import-untyped]

            # strings_as_bytes: FixedString digests must come back byte-exact, not decoded.
            self._client = Client(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                database=self.database,
                connect_timeout=self.connect_timeout,
                send_receive_timeout=self.receive_timeout,
                settings={**self.settings, "strings_as_bytes": True},
                **({"alt_hosts": self.alt_hosts} if self.alt_hosts else {}),
            )
        return self._client

    def _run(
        self,
        sql: str,
        params: Any = None,
        *,
        inserting: bool = False,
        refusals: bool = False,
        **kwargs: Any,
    ) -> Any:
        """The driver's answer; with `refusals`, the server's own refusal is a StatementError."""
        from clickhouse_driver.errors import Error, ServerException  # type: ignore[import-untyped]

        try:
            with self._lock:
                return self._driver().execute(sql, params, **kwargs)
        except ServerException as exc:
            if refusals:
                raise StatementError(exc.code, engine_message(exc.message)) from exc
            raise engine_error(exc, code=exc.code, inserting=inserting) from exc
        except (Error, OSError, EOFError) as exc:
            code = getattr(exc, "code", None)
            raise engine_error(exc, code=code, inserting=inserting) from exc

    def query(self, statement: Statement) -> list[Row]:
        sql, values, sets = server_query(statement)
        rows, columns = self._run(sql, values, with_column_types=True, external_tables=sets)
        readers = [_reader(column_type(spelling)) for _name, spelling in columns]
        if not any(readers):
            return [tuple(row) for row in rows]
        return [
            tuple(v if read is None else read(v) for v, read in zip(row, readers, strict=True))
            for row in rows
        ]

    def execute(self, statement: Statement) -> None:
        sql, values, sets = server_query(statement)
        self._run(sql, values, external_tables=sets)

    def insert(self, database: str, table: Table, rows: Sequence[Row]) -> None:
        strings = [column.type == STRING for column in table.columns]
        encoded = [
            tuple(v.encode() if s else v for v, s in zip(row, strings, strict=True)) for row in rows
        ]
        names = ", ".join(ident(name) for name in table.names)
        sql = f"INSERT INTO {qualified(database, table.name)} ({names}) VALUES"
        self._run(sql, encoded, inserting=True)

    def read_only(self, sql: str, *, settings: Mapping[str, int | str]) -> Answer:
        # The server takes one statement per query and leaves output clauses to the client.
        # readonly goes last: the server applies settings in order, and readonly=1 would
        # refuse any that came after it.
        options = {**{k: v for k, v in settings.items() if k != "readonly"}, "readonly": 1}
        rows, columns = self._run(sql, refusals=True, settings=options, with_column_types=True)
        return Answer(columns=tuple((name, spelling) for name, spelling in columns), rows=rows)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client = None
