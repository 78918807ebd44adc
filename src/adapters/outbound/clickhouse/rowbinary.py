"""ClickHouse RowBinary for chDB: exact bytes both ways, so no value is ever escaped into SQL."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from dedup.adapters.outbound.clickhouse.column_types import (
    STRING,
    UUID_TYPE,
    Array,
    ColumnType,
    DateTime,
    Enum,
    FixedString,
    LowCardinality,
    Named,
    Nullable,
    as_column_type,
    column_type,
)

_NUMBERS: dict[ColumnType, str] = {
    Named(name): fmt
    for name, fmt in [
        ("UInt8", "<B"),
        ("UInt16", "<H"),
        ("UInt32", "<I"),
        ("UInt64", "<Q"),
        ("Int8", "<b"),
        ("Int16", "<h"),
        ("Int32", "<i"),
        ("Int64", "<q"),
        ("Float32", "<f"),
        ("Float64", "<d"),
        ("Bool", "<?"),
    ]
}
_LOW64 = 2**64 - 1


def _enum_format(type_: Enum) -> str:
    return "<b" if type_.bits == 8 else "<h"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _encoder(type_: ColumnType) -> Callable[[Any], bytes]:  # noqa: PLR0911 — one per type
    if fmt := _NUMBERS.get(type_):
        return struct.Struct(fmt).pack
    if type_ == STRING:
        return lambda v: _varint(len(b := v.encode() if isinstance(v, str) else v)) + b
    if isinstance(type_, FixedString):
        size = type_.size
        return lambda v: v.ljust(size, b"\0") if len(v) <= size else _too_long(v, size)
    if type_ == UUID_TYPE:
        return lambda v: struct.pack("<QQ", v.int >> 64, v.int & _LOW64)
    if isinstance(type_, DateTime):
        return lambda v: struct.pack("<I", int(v.timestamp()))
    if isinstance(type_, Enum):
        items, fmt = dict(type_.items), _enum_format(type_)
        return lambda v: struct.pack(fmt, items[v])
    if isinstance(type_, Nullable):
        inner = _encoder(type_.inner)
        return lambda v: b"\x01" if v is None else b"\x00" + inner(v)
    raise TypeError(f"no RowBinary encoder for {type_}")


def _too_long(value: bytes, size: int) -> bytes:
    raise ValueError(f"{value!r} is longer than FixedString({size})")


def encode(types: Sequence[ColumnType | str], rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows of Python values (str, bytes, UUID, aware datetime, int, enum, None) as RowBinary."""
    encoders = [_encoder(as_column_type(type_)) for type_ in types]
    out = bytearray()
    for row in rows:
        for encode_value, value in zip(encoders, row, strict=True):
            out += encode_value(value)
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, size: int) -> bytes:
        chunk = bytes(self.data[self.pos : self.pos + size])
        if len(chunk) != size:
            raise ValueError("truncated RowBinary data")
        self.pos += size
        return chunk

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def varint(self) -> int:
        value = shift = 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    def string(self) -> bytes:
        return self.take(self.varint())

    @property
    def done(self) -> bool:
        return self.pos >= len(self.data)


def _decoder(type_: ColumnType) -> Callable[[_Reader], Any]:  # noqa: PLR0911 — one per type
    if fmt := _NUMBERS.get(type_):
        number: str = fmt  # bound for the lambda: a narrowed name does not stay narrowed in it
        return lambda r: r.unpack(number)
    if type_ == STRING:
        return lambda r: r.string().decode()
    if isinstance(type_, FixedString):
        size = type_.size
        return lambda r: r.take(size)
    if type_ == UUID_TYPE:
        return lambda r: UUID(int=(r.unpack("<Q") << 64) | r.unpack("<Q"))
    if isinstance(type_, DateTime):
        return lambda r: datetime.fromtimestamp(r.unpack("<I"), UTC)
    if isinstance(type_, Enum):
        names, fmt = {value: name for name, value in type_.items}, _enum_format(type_)
        return lambda r: names[r.unpack(fmt)]
    if isinstance(type_, Nullable):
        inner = _decoder(type_.inner)
        return lambda r: None if r.take(1)[0] else inner(r)
    if isinstance(type_, LowCardinality):
        return _decoder(type_.inner)
    if isinstance(type_, Array):
        item = _decoder(type_.inner)
        return lambda r: [item(r) for _ in range(r.varint())]
    raise TypeError(f"no RowBinary decoder for {type_}")


def decode_with_names_and_types(data: bytes) -> tuple[list[ColumnType], list[Any]]:
    """The column types and rows of a `RowBinaryWithNamesAndTypes` result."""
    if not data:
        return [], []
    reader = _Reader(data)
    width = reader.varint()
    for _ in range(width):
        reader.string()  # a name may be an expression with a binary literal in it: unused
    types = [column_type(reader.string().decode()) for _ in range(width)]
    decoders = [_decoder(type_) for type_ in types]
    rows = []
    while not reader.done:
        rows.append(tuple(decode(reader) for decode in decoders))
    return types, rows
