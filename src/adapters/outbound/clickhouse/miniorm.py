"""MiniORM: table declarations and a query builder that keeps every value out of the SQL text."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from attrs import evolve, field, frozen
from dedup.adapters.outbound.clickhouse.column_types import Array, ColumnType, as_column_type


def ident(name: str) -> str:
    """A quoted identifier: backticks, with backslash and backtick escaped."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def qualified(database: str, name: str) -> str:
    return f"{ident(database)}.{ident(name)}"


@frozen
class Column:
    """A column and its ClickHouse type, e.g. `FixedString(16)` (a spelling is read as one)."""

    name: str
    type: ColumnType = field(converter=as_column_type)


@frozen
class Table:
    """A table as the code sees it; the migrations create it, a test checks they agree."""

    name: str
    columns: tuple[Column, ...]
    engine: str

    def __getitem__(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def create_sql(self, database: str, *, on_cluster: str = "") -> str:
        body = ", ".join(f"{ident(c.name)} {c.type}" for c in self.columns)
        cluster = f" {on_cluster}" if on_cluster else ""
        return (
            f"CREATE TABLE IF NOT EXISTS {qualified(database, self.name)}{cluster} "
            f"({body}) ENGINE = {self.engine}"
        )


@frozen
class Param:
    """A value bound to a statement, with the ClickHouse type it is compared as."""

    value: Any
    type: ColumnType = field(converter=as_column_type)


Part = str | Param


@frozen
class Statement:
    """SQL text with its bound values kept apart; executors choose the placeholder syntax."""

    parts: tuple[Part, ...]

    @classmethod
    def text(cls, sql: str) -> Statement:
        return cls((sql,))

    def render(self, placeholder: Callable[[str, Param], str]) -> tuple[str, dict[str, Param]]:
        """The SQL with a placeholder per value, and the values by placeholder name."""
        sql: list[str] = []
        params: dict[str, Param] = {}
        for part in self.parts:
            if isinstance(part, Param):
                name = f"p{len(params)}"
                params[name] = part
                sql.append(placeholder(name, part))
            else:
                sql.append(part)
        return "".join(sql), params


@frozen
class Condition:
    parts: tuple[Part, ...]


def _compare(column: Column, operator: str, value: object) -> Condition:
    return Condition((ident(column.name), f" {operator} ", Param(value, column.type)))


def eq(column: Column, value: object) -> Condition:
    return _compare(column, "=", value)


def ge(column: Column, value: object) -> Condition:
    return _compare(column, ">=", value)


def le(column: Column, value: object) -> Condition:
    return _compare(column, "<=", value)


def lt(column: Column, value: object) -> Condition:
    return _compare(column, "<", value)


def among(column: Column, values: Iterable[object]) -> Condition:
    """`column IN (...)`, bound as one tuple (18.16 rejects an array here)."""
    return Condition((ident(column.name), " IN ", Param(tuple(values), Array(column.type))))


def listed(column: Column, values: Iterable[object]) -> Condition:
    """`column IN (a, b, ...)` with each value bound alone, so the engine sees constants.

    For a few values only; a set goes through among(). 18.16 filters the virtual column
    `_part IN <a set sent beside the query>` to nothing, but prunes parts on constants.
    """
    parts: list[Part] = [ident(column.name), " IN ("]
    for index, value in enumerate(values):
        parts += [", ", Param(value, column.type)] if index else [Param(value, column.type)]
    return Condition((*parts, ")"))


@frozen
class Select:
    """`SELECT columns FROM db.table [FINAL] [WHERE a AND b] [ORDER BY ...]`."""

    database: str
    table: Table
    columns: tuple[Column, ...]
    final: bool = False
    conditions: tuple[Condition, ...] = ()
    order: tuple[Column, ...] = ()

    def where(self, *conditions: Condition) -> Select:
        return evolve(self, conditions=self.conditions + conditions)

    def order_by(self, *names: str) -> Select:
        return evolve(self, order=tuple(self.table[name] for name in names))

    def statement(self) -> Statement:
        parts: list[Part] = [
            "SELECT ",
            ", ".join(ident(c.name) for c in self.columns),
            f" FROM {qualified(self.database, self.table.name)}",
            " FINAL" if self.final else "",
        ]
        for index, condition in enumerate(self.conditions):
            parts.append(" WHERE " if index == 0 else " AND ")
            parts.extend(condition.parts)
        if self.order:
            parts.append(" ORDER BY " + ", ".join(ident(c.name) for c in self.order))
        return Statement(tuple(parts))


def select(database: str, table: Table, *names: str, final: bool = False) -> Select:
    columns = tuple(table[name] for name in names) if names else table.columns
    return Select(database=database, table=table, columns=columns, final=final)


def count(database: str, table: Table, *, final: bool = False) -> Statement:
    suffix = " FINAL" if final else ""
    return Statement.text(f"SELECT count() FROM {qualified(database, table.name)}{suffix}")
