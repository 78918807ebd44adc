"""Put archived rows back into ClickHouse: every file verified first, present rows skipped."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path

from attrs import field, frozen
from dedup.application.ports import Archiver, Progress, RestoreTarget, StoredFilter
from dedup.application.progress import NoProgress
from dedup.domain.archive import ArchiveManifest, Record
from dedup.domain.event import Event


def _chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield chunk


@frozen
class RestoredFile:
    file: Path
    rows: int
    inserted: int


@frozen
class RestoreEvents:
    """Restore archive files; idempotent, since a row whose event_id is stored is skipped.

    Every file is verified against its manifest before the first row is written, so a
    corrupt or truncated file stops the whole restore with an ArchiveError and writes nothing.
    Restored events come back into the dedup window, so the stored filter learns them first.
    """

    archiver: Archiver
    target: RestoreTarget
    seen: StoredFilter
    progress: Progress = field(factory=NoProgress)
    chunk_rows: int = 10_000

    def execute(self, files: Sequence[Path]) -> list[RestoredFile]:
        manifests = [self._verified(file) for file in files]
        return [self._restore(manifest) for manifest in manifests]

    def _verified(self, file: Path) -> ArchiveManifest:
        manifest = self.archiver.verify(file)
        self.progress.note(f"verified {manifest.file} ({manifest.rows} rows)")
        return manifest

    def _restore(self, manifest: ArchiveManifest) -> RestoredFile:
        self.progress.begin(f"restore {manifest.file.name}", manifest.rows)
        inserted = 0
        for chunk in _chunks(self.archiver.read(manifest.file), self.chunk_rows):
            self.seen.add([record for record in chunk if isinstance(record, Event)])
            inserted += self.target.restore(chunk)
            self.progress.advance(len(chunk))
        self.progress.note(
            f"restored {manifest.file}: {inserted} of {manifest.rows} rows inserted, "
            f"{manifest.rows - inserted} were stored already"
        )
        return RestoredFile(file=manifest.file, rows=manifest.rows, inserted=inserted)
