"""The archive file format: JSON Lines shaped like ClickHouse's JSONEachRow, and the manifest.

A row is one JSON object per line, keyed by column name. FixedString digests are lowercase
hex (raw bytes are not valid JSON text), DateTime is `YYYY-MM-DD HH:MM:SS` in UTC as
JSONEachRow writes it, an unknown `timestamp` is null, and `version` is left out of events: it
is derived from event_id. An events row without the standard fields (type, event, user_id,
anonymous_id, timestamp: a file written before they existed) takes them from its payload.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
from dedup.domain.archive import ArchivedTable, ArchiveManifest, Record
from dedup.domain.event import Event, EventId
from dedup.domain.fingerprint import EventFingerprint
from dedup.domain.outcome import Duplicate, DuplicateKind
from dedup.domain.standard_fields import StandardFields

FORMAT = "dedup-archive/1"
DATA_SUFFIX = ".jsonl.gz"
MANIFEST_SUFFIX = ".manifest.json"
_MOMENT_LENGTH = len("2026-11-29 12:00:00")
# msgspec, not json: rows are millions, and it is five to ten times faster either way.
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(dict[str, Any])


class _TopLevel(msgspec.Struct, rename="camel"):
    """The payload fields the standard ones are read from; msgspec skips the rest unparsed."""

    type: Any = None
    event: Any = None
    name: Any = None
    user_id: Any = None
    anonymous_id: Any = None
    timestamp: Any = None

    def fields(self) -> StandardFields:
        return StandardFields.of(
            {
                "type": self.type,
                "event": self.event,
                "name": self.name,
                "userId": self.user_id,
                "anonymousId": self.anonymous_id,
                "timestamp": self.timestamp,
            }
        )


# Ten times faster than json.loads of the whole payload, for files written before the columns.
_STANDARD_OF_PAYLOAD = msgspec.json.Decoder(_TopLevel)


def moment_text(value: datetime) -> str:
    """`YYYY-MM-DD HH:MM:SS` in UTC; ClickHouse DateTime holds whole seconds."""
    return value.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat(sep=" ")


def moment_from(text: str) -> datetime:
    # fromisoformat, not strptime: ten times faster, which matters over millions of rows.
    if len(text) != _MOMENT_LENGTH or text[10] != " ":
        raise ValueError(f"expected YYYY-MM-DD HH:MM:SS, got {text!r}")
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def line_from_record(record: Record) -> bytes:
    row: dict[str, str | None]
    if isinstance(record, Event):
        standard = record.standard
        row = {
            "event_id": str(record.event_id),
            "fingerprint": record.fingerprint.hex,
            "content": record.content.hex,
            "received_at": moment_text(record.received_at),
            "source": record.source,
            "payload": record.payload,
            "type": standard.type,
            "event": standard.event,
            "user_id": standard.user_id,
            "anonymous_id": standard.anonymous_id,
            "timestamp": _optional_moment(standard.timestamp),
        }
    else:
        row = {
            "event_id": str(record.event_id),
            "fingerprint": record.fingerprint.hex,
            "original_event_id": str(record.original_event_id),
            "received_at": moment_text(record.received_at),
            "kind": record.kind.value,
        }
    return _ENCODER.encode(row) + b"\n"


def record_from_line(table: ArchivedTable, line: bytes) -> Record:
    """Raises ValueError (or KeyError, TypeError) when the line is not a row of the table."""
    row = _DECODER.decode(line)
    if table is ArchivedTable.EVENTS:
        return Event(
            event_id=EventId(UUID(row["event_id"])),
            fingerprint=EventFingerprint.from_hex(row["fingerprint"]),
            content=EventFingerprint.from_hex(row["content"]),
            received_at=moment_from(row["received_at"]),
            source=_text(row["source"]),
            payload=_text(row["payload"]),
            standard=_standard(row),
        )
    if table is ArchivedTable.DUPLICATES:
        return Duplicate(
            event_id=EventId(UUID(row["event_id"])),
            fingerprint=EventFingerprint.from_hex(row["fingerprint"]),
            original_event_id=EventId(UUID(row["original_event_id"])),
            received_at=moment_from(row["received_at"]),
            kind=DuplicateKind(row["kind"]),
        )
    raise ValueError(f"{table.value} is not archived to files")


def _standard(row: dict[str, Any]) -> StandardFields:
    if "type" not in row:
        return _STANDARD_OF_PAYLOAD.decode(row["payload"]).fields()
    timestamp = row["timestamp"]
    return StandardFields(
        type=_text(row["type"]),
        event=_text(row["event"]),
        user_id=_text(row["user_id"]),
        anonymous_id=_text(row["anonymous_id"]),
        timestamp=None if timestamp is None else moment_from(_text(timestamp)),
    )


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def manifest_json(manifest: ArchiveManifest) -> bytes:
    document = {
        "format": FORMAT,
        "table": manifest.table.value,
        "day": manifest.day.isoformat(),
        "file": manifest.file.name,
        "rows": manifest.rows,
        # A string: JSON readers that use doubles would round a 64-bit sum.
        "id_sum": str(manifest.id_sum),
        "min_received_at": _optional_moment(manifest.min_received_at),
        "max_received_at": _optional_moment(manifest.max_received_at),
        "sha256": manifest.sha256,
    }
    return json.dumps(document, indent=2).encode() + b"\n"


def manifest_from_json(data: bytes, *, directory: Path) -> ArchiveManifest:
    """Raises ValueError (or KeyError, TypeError) when this is not a manifest we wrote."""
    document = json.loads(data)
    if document.get("format") != FORMAT:
        raise ValueError(f"unknown manifest format {document.get('format')!r}")
    name = document["file"]
    if not isinstance(name, str) or Path(name).name != name:
        raise ValueError("the manifest names its file with a path; expected a bare name")
    return ArchiveManifest(
        table=ArchivedTable(document["table"]),
        day=date.fromisoformat(document["day"]),
        file=directory / name,
        rows=int(document["rows"]),
        id_sum=int(document["id_sum"]),
        min_received_at=_moment_or_none(document["min_received_at"]),
        max_received_at=_moment_or_none(document["max_received_at"]),
        sha256=str(document["sha256"]),
    )


def _optional_moment(value: datetime | None) -> str | None:
    return None if value is None else moment_text(value)


def _moment_or_none(value: str | None) -> datetime | None:
    return None if value is None else moment_from(value)


def data_name(table: ArchivedTable, day: date, attempt: int) -> str:
    """`events-2026-11-20.jsonl.gz`, then `events-2026-11-20.1.jsonl.gz`, ... never reused."""
    suffix = f".{attempt}" if attempt else ""
    return f"{table.value}-{day.isoformat()}{suffix}{DATA_SUFFIX}"


def manifest_path(file: Path) -> Path:
    """The manifest beside a data file (given the data file or the manifest itself)."""
    if file.name.endswith(MANIFEST_SUFFIX):
        return file
    return file.with_name(file.name.removesuffix(DATA_SUFFIX) + MANIFEST_SUFFIX)
