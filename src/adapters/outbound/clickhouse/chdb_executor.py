"""The Executor on chDB: ClickHouse inside this process, one engine bound to one path."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from attrs import define, field
from dedup.adapters.outbound.clickhouse import rowbinary
from dedup.adapters.outbound.clickhouse.column_types import STRING
from dedup.adapters.outbound.clickhouse.errors import code_in, engine_error
from dedup.adapters.outbound.clickhouse.executor import (
    READONLY,
    Answer,
    Executor,
    StatementError,
    engine_message,
)
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


# How long an insert trusts what it last read about a table's CHECK constraints: the query
# costs about as much as two `SELECT 1`, and a constraint is added by hand, rarely.
CHECKS_SEEN_FOR = 5.0


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


# JSON as exact as a server's native answer: 64-bit integers as numbers, bytes that are no
# UTF-8 replaced (rather than JSON that does not parse).
_JSON_OUTPUT = {"output_format_json_quote_64bit_integers": 0, "output_format_json_validate_utf8": 1}


@contextmanager
def _statement_errors() -> Iterator[None]:
    """chDB's refusals (they carry ClickHouse's code) as StatementError, the rest unavailable."""
    import chdb

    try:
        yield
    except (RuntimeError, chdb.ChdbError) as exc:
        code = code_in(str(exc))
        if code is None:
            raise engine_error(exc, code=None, inserting=False) from exc
        raise StatementError(code, engine_message(str(exc))) from exc


def _json(session: Any, statement: str, **params: str) -> Any:
    with _statement_errors():
        return json.loads(session.query(statement, "JSONCompact", params=params).bytes())


def _canonical(session: Any, sql: str) -> str:
    try:
        [[text]] = _json(session, "SELECT formatQuery({sql:String})", sql=chdb_param(sql))["data"]
    except StatementError as exc:  # the message would quote this wrapper: keep what concerns sql
        message = exc.message.split(" In scope SELECT formatQuery(")[0].rstrip(" .:")
        raise StatementError(exc.code, message) from exc
    return str(text)


def _one_query(session: Any, sql: str) -> str:
    """The statement as ClickHouse's parser reads it, once that is one query and no more.

    chDB would run whatever follows a `;`, and acts on INTO OUTFILE (a file written by this
    process, readonly or not) and FORMAT itself. formatQuery() parses exactly one statement
    and gives back its canonical text, which is what runs. One more INTO OUTFILE shows in
    that text's own canonical form only when it has no INTO OUTFILE or FORMAT yet, and is no
    INSERT (whose inline data would swallow it) or SET or SYSTEM (which take no output).
    """
    canonical = _canonical(session, sql)
    try:
        probed = _canonical(session, f"{canonical}\nINTO OUTFILE ''")
    except StatementError:
        probed = canonical
    if probed == canonical:
        detail = "only a read is answered here: INSERT, SET, SYSTEM, INTO OUTFILE, FORMAT refused"
        raise StatementError(READONLY, detail)
    return canonical


@define
class ChdbExecutor(Executor):
    """ClickHouse in this process (chDB); one engine per process, bound to one path at a time."""

    path: str
    database: str = "default"  # where a name a statement leaves unqualified is looked up
    _session: Any = field(default=None, init=False)
    # One engine per process, driven by the queue thread and readiness probes: one at a time.
    _lock: threading.RLock = field(factory=threading.RLock, init=False)
    _checks_seen: dict[tuple[str, str], tuple[float, bool]] = field(factory=dict, init=False)

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

    def _run(self, sql: str, params: dict[str, Param], fmt: str, *, inserting: bool = False) -> Any:
        with _engine_errors(inserting=inserting), self._lock:
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
        if self._checked(database, table.name):
            # chDB's streaming insert leaves out a block a CHECK refuses and returns as if it
            # were written (chDB 4.4): such a table takes its rows through a query, which
            # raises. Fifteen times slower, so only where a constraint could refuse them.
            structure = ", ".join(f"{ident(c.name)} {c.type.sql}" for c in table.columns)
            statement = Statement(
                (
                    f"{sql} SELECT * FROM format(RowBinary, ",
                    Param(structure, STRING),
                    ", unhex(",
                    Param(data.hex(), STRING),
                    "))",
                )
            )
            self._run(*statement.render(_placeholder), "TSV", inserting=True)
            return
        with (
            _engine_errors(inserting=True),
            self._lock,
            self._engine().send_insert(sql, "RowBinary") as inserter,
        ):
            inserter.append(data)
            inserter.finish()

    def _checked(self, database: str, table: str) -> bool:
        """Whether the table has a CHECK constraint, as of CHECKS_SEEN_FOR seconds ago at most."""
        key = (database, table)
        seen = self._checks_seen.get(key)
        if seen is not None and time.monotonic() - seen[0] < CHECKS_SEEN_FOR:
            return seen[1]
        statement = Statement(
            (
                "SELECT count() FROM system.tables WHERE database = ",
                Param(database, STRING),
                " AND name = ",
                Param(table, STRING),
                " AND position(create_table_query, ' CONSTRAINT ') > 0",
            )
        )
        checked = bool(self.query(statement)[0][0])
        self._checks_seen[key] = (time.monotonic(), checked)
        return checked

    def read_only(self, sql: str, *, settings: Mapping[str, int | str]) -> Answer:
        # A connection of its own: the engine's shared session keeps serving the writer, and
        # its settings (readonly last, so that it does not refuse the others) are this one's.
        options = {k: v for k, v in settings.items() if k != "readonly"}
        options |= {**_JSON_OUTPUT, "database": self.database, "readonly": 1}
        with self._reader(options) as session:
            answer = _json(session, _one_query(session, sql))
        columns = tuple((column["name"], column["type"]) for column in answer["meta"])
        return Answer(columns=columns, rows=answer["data"])

    @contextmanager
    def _reader(self, options: Mapping[str, int | str]) -> Iterator[Any]:
        from chdb import session

        STORE_LOCKS.acquire(self.path)
        try:
            with _engine_errors():
                reader = session.Session(f"{self.path}?{urlencode(options)}")  # type: ignore[no-untyped-call]
            try:
                yield reader
            finally:
                reader.close()  # type: ignore[no-untyped-call]
        finally:
            STORE_LOCKS.release(self.path)

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None
                STORE_LOCKS.release(self.path)
