"""Run MiniORM statements on a ClickHouse server (native protocol) or in-process (chDB)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from attrs import define, field
from dedup.adapters.outbound.clickhouse import rowbinary
from dedup.adapters.outbound.clickhouse.mappers import Row, utc
from dedup.adapters.outbound.clickhouse.miniorm import Param, Statement, Table, ident, qualified
from dedup.domain.errors import BackendUnavailableError

BACKEND = "clickhouse"


class Executor(Protocol):
    """One ClickHouse engine; every failure surfaces as BackendUnavailableError("clickhouse")."""

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


# --- server: clickhouse-driver ---------------------------------------------------------------


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
        if param.type.startswith("Array("):
            table = f"_{name}"
            sets.append(
                {
                    "name": table,
                    "structure": [("value", param.type[len("Array(") : -1])],
                    "data": [(value,) for value in param.value],
                }
            )
            return table
        return f"%({name})s"

    sql, params = statement.render(placeholder)
    values = {
        name: server_value(p.value) for name, p in params.items() if not p.type.startswith("Array(")
    }
    return sql, values or None, sets


def _from_server(value: Any, type_: str) -> Any:
    if type_ == "String":
        return value.decode()
    if isinstance(value, datetime):
        return utc(value)
    return value


@define
class ServerExecutor(Executor):
    """A ClickHouse server over the native protocol; the client connects on first use."""

    host: str = "127.0.0.1"
    port: int = 9000
    user: str = "default"
    password: str = ""
    connect_timeout: float = 5.0
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
                database="default",
                connect_timeout=self.connect_timeout,
                settings={"strings_as_bytes": True},
            )
        return self._client

    def _run(self, sql: str, params: Any = None, **kwargs: Any) -> Any:
        from clickhouse_driver.errors import Error  # type: ignore[import-untyped]

        try:
            with self._lock:
                return self._driver().execute(sql, params, **kwargs)
        except (Error, OSError, EOFError) as exc:
            raise BackendUnavailableError(BACKEND, str(exc).splitlines()[0]) from exc

    def query(self, statement: Statement) -> list[Row]:
        sql, values, sets = server_query(statement)
        rows, columns = self._run(sql, values, with_column_types=True, external_tables=sets)
        types = [type_ for _name, type_ in columns]
        return [tuple(_from_server(v, t) for v, t in zip(row, types, strict=True)) for row in rows]

    def execute(self, statement: Statement) -> None:
        sql, values, sets = server_query(statement)
        self._run(sql, values, external_tables=sets)

    def insert(self, database: str, table: Table, rows: Sequence[Row]) -> None:
        strings = [column.type == "String" for column in table.columns]
        encoded = [
            tuple(v.encode() if s else v for v, s in zip(row, strings, strict=True)) for row in rows
        ]
        names = ", ".join(ident(name) for name in table.names)
        self._run(f"INSERT INTO {qualified(database, table.name)} ({names}) VALUES", encoded)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.disconnect()
                self._client = None


# --- embedded: chDB --------------------------------------------------------------------------


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
    return "{" + name + ":" + param.type + "}"


class _StoreLocks:
    """One exclusive lock per embedded store and process: two processes never write one store.

    chDB would open a store another process is writing to, and both would then keep their
    own idea of its parts; an archive run dropping partitions under a serving process would
    corrupt it. Within one process the lock is shared by every executor on the same path.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held: dict[str, tuple[int, int]] = {}

    def acquire(self, path: str) -> None:
        import fcntl
        import os

        key = os.path.realpath(path)
        with self._guard:
            if key in self._held:
                fd, count = self._held[key]
                self._held[key] = (fd, count + 1)
                return
            os.makedirs(key, exist_ok=True)
            fd = os.open(os.path.join(key, ".dedup.lock"), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise BackendUnavailableError(
                    BACKEND,
                    f"the embedded store {key} is in use by another process"
                    " (stop `dedup serve` first, or use a ClickHouse server)",
                ) from None
            self._held[key] = (fd, 1)

    def release(self, path: str) -> None:
        import os

        key = os.path.realpath(path)
        with self._guard:
            fd, count = self._held.pop(key, (-1, 0))
            if count > 1:
                self._held[key] = (fd, count - 1)
            elif fd >= 0:
                os.close(fd)  # closing the descriptor releases the flock


_STORE_LOCKS = _StoreLocks()


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

            _STORE_LOCKS.acquire(self.path)
            try:
                self._session = session.Session(self.path)  # type: ignore[no-untyped-call]
            except BaseException:
                _STORE_LOCKS.release(self.path)
                raise
        return self._session

    def _run(self, sql: str, params: dict[str, Param], fmt: str) -> Any:
        import chdb

        try:
            with self._lock:
                return self._engine().query(
                    sql, fmt, params={name: chdb_param(p.value) for name, p in params.items()}
                )
        except (RuntimeError, chdb.ChdbError, OSError) as exc:
            raise BackendUnavailableError(BACKEND, str(exc).splitlines()[0]) from exc

    def query(self, statement: Statement) -> list[Row]:
        sql, params = statement.render(_placeholder)
        result = self._run(sql, params, "RowBinaryWithNamesAndTypes")
        _types, rows = rowbinary.decode_with_names_and_types(result.bytes())
        return rows

    def execute(self, statement: Statement) -> None:
        sql, params = statement.render(_placeholder)
        self._run(sql, params, "TSV")

    def insert(self, database: str, table: Table, rows: Sequence[Row]) -> None:
        import chdb

        data = rowbinary.encode([column.type for column in table.columns], rows)
        names = ", ".join(ident(name) for name in table.names)
        sql = f"INSERT INTO {qualified(database, table.name)} ({names})"
        try:
            with self._lock, self._engine().send_insert(sql, "RowBinary") as inserter:
                inserter.append(data)
                inserter.finish()
        except (RuntimeError, chdb.ChdbError, OSError) as exc:
            raise BackendUnavailableError(BACKEND, str(exc).splitlines()[0]) from exc

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None
                _STORE_LOCKS.release(self.path)
