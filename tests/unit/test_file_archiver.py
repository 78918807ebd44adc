"""FileArchiver on a temporary directory: durable names, manifests, and refusing bad files."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from dedup.adapters.outbound.file_archiver import FileArchiver
from dedup.domain.archive import ArchivedTable, ArchiveError, Partition, Tally
from dedup.domain.outcome import Duplicate
from dedup.domain.standard_fields import StandardFields

from tests.builders import a_copy_of, an_event

DAY = date(2026, 11, 20)
EVENTS = Partition(table=ArchivedTable.EVENTS, start=DAY)


def events_of_the_day(n: int = 3) -> list:
    return [
        an_event(
            {"action": "click", "text": 'naïve "quoted" \\ line\nbreak', "i": i},
            received_at=datetime(2026, 11, 20, 1, tzinfo=UTC) + timedelta(minutes=i),
        )
        for i in range(n)
    ]


def test_written_rows_read_back_equal_and_the_manifest_describes_them(tmp_path: Path) -> None:
    archiver = FileArchiver(tmp_path)
    events = events_of_the_day()

    manifest = archiver.write(EVENTS, events)

    assert manifest.file == tmp_path / "events-2026-11-20.jsonl.gz"
    assert list(archiver.read(manifest.file)) == events
    assert archiver.verify(manifest.file) == manifest
    assert manifest.tally == Tally.of(events)
    assert manifest.min_received_at == events[0].received_at
    assert manifest.max_received_at == events[-1].received_at
    document = json.loads((tmp_path / "events-2026-11-20.manifest.json").read_text())
    assert document["rows"] == 3
    assert document["sha256"] == manifest.sha256
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_lines_are_shaped_like_json_each_row(tmp_path: Path) -> None:
    event = an_event(
        {"type": "track", "event": "Signed Up", "userId": 42, "timestamp": "2026-11-20T02:30:00Z"},
        received_at=datetime(2026, 11, 20, 1, tzinfo=UTC),
    )
    manifest = FileArchiver(tmp_path).write(EVENTS, [event, *events_of_the_day(1)])

    with gzip.open(manifest.file, "rt", encoding="utf-8") as lines:
        row, native = (json.loads(line) for line in lines)

    assert row == {
        "event_id": str(event.event_id),
        "fingerprint": event.fingerprint.hex,
        "content": event.content.hex,
        "received_at": "2026-11-20 01:00:00",
        "source": event.source,
        "payload": event.payload,
        "type": "track",
        "event": "Signed Up",
        "user_id": "42",
        "anonymous_id": "",
        "timestamp": "2026-11-20 02:30:00",
    }
    assert native["timestamp"] is None  # unknown


def as_written_before_the_standard_fields(file: Path) -> None:
    """Rewrite an events file as dedup wrote it before the standard fields, sha256 included."""
    with gzip.open(file, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    old = {"event_id", "fingerprint", "content", "received_at", "source", "payload"}
    data = "".join(json.dumps({k: v for k, v in row.items() if k in old}) + "\n" for row in rows)
    file.write_bytes(gzip.compress(data.encode(), mtime=0))
    path = file.with_name(file.name.replace(".jsonl.gz", ".manifest.json"))
    document = json.loads(path.read_text())
    document["sha256"] = hashlib.sha256(file.read_bytes()).hexdigest()
    path.write_text(json.dumps(document))


def test_a_file_written_before_the_standard_fields_reads_them_from_each_payload(
    tmp_path: Path,
) -> None:
    archiver = FileArchiver(tmp_path)
    page = {"type": "page", "name": "Pricing", "anonymousId": "a-1", "timestamp": "bad"}
    events = [an_event(page, received_at=datetime(2026, 11, 20, 3, tzinfo=UTC))]
    events += events_of_the_day(2)
    manifest = archiver.write(EVENTS, events)
    as_written_before_the_standard_fields(manifest.file)

    read = list(archiver.read(archiver.verify(manifest.file).file))

    assert read == events
    assert read[0].standard == StandardFields(type="page", event="Pricing", anonymous_id="a-1")


def test_duplicates_round_trip(tmp_path: Path) -> None:
    original = events_of_the_day(1)[0]
    duplicate = Duplicate.of(a_copy_of(original), original=original.event_id, conflicting=True)
    archiver = FileArchiver(tmp_path)

    manifest = archiver.write(Partition(table=ArchivedTable.DUPLICATES, start=DAY), [duplicate])

    assert archiver.verify(manifest.file).rows == 1
    assert list(archiver.read(manifest.file)) == [duplicate]


def test_a_second_write_for_the_same_day_never_overwrites_the_first(tmp_path: Path) -> None:
    archiver = FileArchiver(tmp_path)
    first = archiver.write(EVENTS, events_of_the_day(1))
    second = archiver.write(EVENTS, events_of_the_day(2))

    assert second.file.name == "events-2026-11-20.1.jsonl.gz"
    assert archiver.verify(first.file).rows == 1
    assert [m.rows for m in archiver.archived(EVENTS)] == [1, 2]


def test_a_data_file_orphaned_by_a_crash_is_neither_listed_nor_reused(tmp_path: Path) -> None:
    (tmp_path / "events-2026-11-20.jsonl.gz").write_bytes(b"half a file")
    archiver = FileArchiver(tmp_path)

    manifest = archiver.write(EVENTS, events_of_the_day(1))

    assert manifest.file.name == "events-2026-11-20.1.jsonl.gz"
    assert archiver.archived(EVENTS) == [manifest]
    with pytest.raises(ArchiveError, match="no manifest"):
        archiver.verify(tmp_path / "events-2026-11-20.jsonl.gz")


def test_a_truncated_file_fails_verification(tmp_path: Path) -> None:
    archiver = FileArchiver(tmp_path)
    manifest = archiver.write(EVENTS, events_of_the_day(50))
    data = manifest.file.read_bytes()
    manifest.file.write_bytes(data[: len(data) // 2])

    with pytest.raises(ArchiveError, match="corrupt or truncated"):
        archiver.verify(manifest.file)


def test_a_file_whose_rows_disagree_with_its_manifest_fails_even_with_a_fresh_sha256(
    tmp_path: Path,
) -> None:
    archiver = FileArchiver(tmp_path)
    manifest = archiver.write(EVENTS, events_of_the_day(3))
    # Rewrite the file with one row less and fix the sha256: only the row tally can tell.
    fewer = FileArchiver(tmp_path / "other").write(EVENTS, events_of_the_day(2))
    manifest.file.write_bytes(fewer.file.read_bytes())
    path = tmp_path / "events-2026-11-20.manifest.json"
    document = json.loads(path.read_text())
    document["sha256"] = fewer.sha256
    path.write_text(json.dumps(document))

    with pytest.raises(ArchiveError, match="do not add up"):
        archiver.verify(manifest.file)


def test_verify_accepts_the_manifest_path_too(tmp_path: Path) -> None:
    archiver = FileArchiver(tmp_path)
    manifest = archiver.write(EVENTS, events_of_the_day(1))

    assert archiver.verify(tmp_path / "events-2026-11-20.manifest.json") == manifest


def test_archives_moved_elsewhere_still_verify(tmp_path: Path) -> None:
    manifest = FileArchiver(tmp_path / "a").write(EVENTS, events_of_the_day(2))
    moved = tmp_path / "b"
    moved.mkdir()
    for path in (tmp_path / "a").iterdir():
        path.rename(moved / path.name)

    assert FileArchiver(tmp_path / "c").verify(moved / manifest.file.name).rows == 2
