"""ClickHouse types as declared values: code branches on what a type is, never on its spelling.

A type prints (and compares equal to) exactly what ClickHouse spells it, so a declaration
still renders into DDL and matches what DESCRIBE TABLE reports. `column_type` reads a
spelling into a value once: for text a caller writes, and for the types a result reports.
"""

from __future__ import annotations

import re
from functools import cache
from typing import ClassVar

from attrs import frozen


class ColumnType:
    """Equal to another type, or to a string, with the same spelling (what ClickHouse compares)."""

    @property
    def sql(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.sql

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ColumnType | str):
            return self.sql == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.sql)


@frozen(eq=False)
class Named(ColumnType):
    """A type with no parameters: String, UUID, UInt64, DateTime...; also any type this
    module does not take apart, kept whole so it still renders."""

    name: str

    @property
    def sql(self) -> str:
        return self.name


@frozen(eq=False)
class FixedString(ColumnType):
    size: int

    @property
    def sql(self) -> str:
        return f"FixedString({self.size})"


@frozen(eq=False)
class DateTime(ColumnType):
    """Whole seconds; in the server's time zone unless it names one."""

    timezone: str | None = None

    @property
    def sql(self) -> str:
        return "DateTime" if self.timezone is None else f"DateTime('{_escaped(self.timezone)}')"


@frozen(eq=False)
class Enum(ColumnType):
    """Enum8 or Enum16 (`bits`), with its names and their stored values."""

    bits: int
    items: tuple[tuple[str, int], ...]

    @property
    def sql(self) -> str:
        body = ", ".join(f"'{_escaped(name)}' = {value}" for name, value in self.items)
        return f"Enum{self.bits}({body})"


@frozen(eq=False)
class Wrapped(ColumnType):
    """A type around one `inner` type: Array(T), Nullable(T), LowCardinality(T)."""

    inner: ColumnType
    wrapper: ClassVar[str]

    @property
    def sql(self) -> str:
        return f"{self.wrapper}({self.inner.sql})"


class Array(Wrapped):
    wrapper = "Array"


class Nullable(Wrapped):
    wrapper = "Nullable"


class LowCardinality(Wrapped):
    wrapper = "LowCardinality"


_WRAPPERS: dict[str, type[Wrapped]] = {w.wrapper: w for w in (Array, Nullable, LowCardinality)}
STRING = Named("String")
UUID_TYPE = Named("UUID")  # not UUID: that name is the Python value's
UINT8, UINT32, UINT64 = Named("UInt8"), Named("UInt32"), Named("UInt64")
UTC_DATETIME = DateTime("UTC")

_CALL = re.compile(r"(\w+)\((.*)\)", re.DOTALL)
_ENUM_ITEM = re.compile(r"'((?:[^'\\]|\\.)*)'\s*=\s*(-?\d+)")
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")


def _escaped(name: str) -> str:
    return name.replace("\\", "\\\\").replace("'", "\\'")


def _unescaped(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


@cache
def column_type(spelling: str) -> ColumnType:
    """The type ClickHouse spells this way (e.g. `Array(FixedString(16))`)."""
    call = _CALL.fullmatch(spelling.strip())
    if call is None:
        return DateTime() if spelling.strip() == "DateTime" else Named(spelling.strip())
    name, arguments = call.groups()
    if name in _WRAPPERS:
        return _WRAPPERS[name](column_type(arguments))
    if name == "FixedString":
        return FixedString(int(arguments))
    if name == "DateTime" and (zone := _QUOTED.fullmatch(arguments.strip())):
        return DateTime(_unescaped(zone.group(1)))
    if name in ("Enum8", "Enum16"):
        items = tuple((_unescaped(n), int(v)) for n, v in _ENUM_ITEM.findall(arguments))
        return Enum(int(name.removeprefix("Enum")), items)
    return Named(spelling.strip())


def as_column_type(value: ColumnType | str) -> ColumnType:
    """A declared type as it is, or the one a spelling names."""
    return value if isinstance(value, ColumnType) else column_type(value)
