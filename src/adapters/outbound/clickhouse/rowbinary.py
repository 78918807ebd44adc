"""ClickHouse RowBinary for chDB: exact bytes both ways, so no value is ever escaped into SQL."""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

_INTS = {
    "UInt8": "<B",
    "UInt16": "<H",
    "UInt32": "<I",
    "UInt64": "<Q",
    "Int8": "<b",
    "Int16": "<h",
    "Int32": "<i",
    "Int64": "<q",
    "Float32": "<f",
    "Float64": "<d",
    "Bool": "<?",
}
_ENUM_ITEM = re.compile(r"'((?:[^'\\]|\\.)*)'\s*=\s*(-?\d+)")
_LOW64 = 2**64 - 1


def enum_items(type_: str) -> dict[str, int]:
    """The names and values of an `Enum8('a' = 1, ...)` type."""
    return {re.sub(r"\\(.)", r"\1", name): int(value) for name, value in _ENUM_ITEM.findall(type_)}


def _inner(type_: str, wrapper: str) -> str:
    return type_[len(wrapper) + 1 : -1]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _encoder(type_: str) -> Callable[[Any], bytes]:
    if type_ in _INTS:
        return struct.Struct(_INTS[type_]).pack
    if type_ == "String":
        return lambda v: _varint(len(b := v.encode() if isinstance(v, str) else v)) + b
    if type_.startswith("FixedString("):
        size = int(_inner(type_, "FixedString"))
        return lambda v: v.ljust(size, b"\0") if len(v) <= size else _too_long(v, size)
    if type_ == "UUID":
        return lambda v: struct.pack("<QQ", v.int >> 64, v.int & _LOW64)
    if type_ == "DateTime" or type_.startswith("DateTime("):
        return lambda v: struct.pack("<I", int(v.timestamp()))
    if type_.startswith(("Enum8(", "Enum16(")):
        items, fmt = enum_items(type_), "<b" if type_.startswith("Enum8") else "<h"
        return lambda v: struct.pack(fmt, items[v])
    raise TypeError(f"no RowBinary encoder for {type_}")


def _too_long(value: bytes, size: int) -> bytes:
    raise ValueError(f"{value!r} is longer than FixedString({size})")


def encode(types: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows of Python values (str, bytes, UUID, aware datetime, int, enum name) as RowBinary."""
    encoders = [_encoder(type_) for type_ in types]
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


def _decoder(type_: str) -> Callable[[_Reader], Any]:  # noqa: PLR0911 — a branch per type
    if type_ in _INTS:
        fmt = _INTS[type_]
        return lambda r: r.unpack(fmt)
    if type_ == "String":
        return lambda r: r.string().decode()
    if type_.startswith("FixedString("):
        size = int(_inner(type_, "FixedString"))
        return lambda r: r.take(size)
    if type_ == "UUID":
        return lambda r: UUID(int=(r.unpack("<Q") << 64) | r.unpack("<Q"))
    if type_ == "DateTime" or type_.startswith("DateTime("):
        return lambda r: datetime.fromtimestamp(r.unpack("<I"), UTC)
    if type_.startswith(("Enum8(", "Enum16(")):
        names = {value: name for name, value in enum_items(type_).items()}
        fmt = "<b" if type_.startswith("Enum8") else "<h"
        return lambda r: names[r.unpack(fmt)]
    if type_.startswith("Nullable("):
        inner = _decoder(_inner(type_, "Nullable"))
        return lambda r: None if r.take(1)[0] else inner(r)
    if type_.startswith("LowCardinality("):
        return _decoder(_inner(type_, "LowCardinality"))
    if type_.startswith("Array("):
        item = _decoder(_inner(type_, "Array"))
        return lambda r: [item(r) for _ in range(r.varint())]
    raise TypeError(f"no RowBinary decoder for {type_}")


def decode_with_names_and_types(data: bytes) -> tuple[list[str], list[Any]]:
    """The column types and rows of a `RowBinaryWithNamesAndTypes` result."""
    if not data:
        return [], []
    reader = _Reader(data)
    width = reader.varint()
    for _ in range(width):
        reader.string()  # a name may be an expression with a binary literal in it: unused
    types = [reader.string().decode() for _ in range(width)]
    decoders = [_decoder(type_) for type_ in types]
    rows = []
    while not reader.done:
        rows.append(tuple(decode(reader) for decode in decoders))
    return types, rows
