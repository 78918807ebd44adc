"""The Archiver on a directory: gzip JSON Lines per partition, a manifest beside each file."""

from __future__ import annotations

import gzip
import hashlib
import os
import uuid
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from attrs import frozen
from dedup.adapters.outbound.archive_format import (
    data_name,
    line_from_record,
    manifest_from_json,
    manifest_json,
    manifest_path,
    record_from_line,
)
from dedup.application.ports import Archiver
from dedup.domain.archive import (
    ArchiveError,
    ArchiveManifest,
    Partition,
    Record,
    Tally,
    id_low_bits,
)

_READ_ERRORS = (OSError, EOFError, zlib.error)
_BAD_ROW = (ValueError, KeyError, TypeError)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _fsync_directory(directory: Path) -> None:
    """A rename is durable only once the directory entry itself reaches the disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


SUPERSEDED_SUFFIX = ".superseded"


@frozen
class FileArchiver(Archiver):
    """Files in one directory; a name once used is never written again (suffixes .1, .2, ...)."""

    directory: Path

    def write(self, partition: Partition, records: Iterable[Record]) -> ArchiveManifest:
        self.directory.mkdir(parents=True, exist_ok=True)
        temp = self.directory / f".{partition.table.value}-{uuid.uuid4().hex}.tmp"
        try:
            rows, id_sum, low, high = self._write_data(temp, records)
            target = self._claim_name(partition, temp)
            manifest = ArchiveManifest(
                table=partition.table,
                day=partition.start,
                file=target,
                rows=rows,
                id_sum=id_sum,
                min_received_at=low,
                max_received_at=high,
                sha256=_sha256(target),
            )
            self._write_manifest(manifest)
        finally:
            temp.unlink(missing_ok=True)
        return manifest

    def verify(self, file: Path) -> ArchiveManifest:
        manifest = self._manifest(file)
        if not manifest.file.is_file():
            raise ArchiveError(f"{manifest.file}: the file its manifest describes is missing")
        if _sha256(manifest.file) != manifest.sha256:
            raise ArchiveError(
                f"{manifest.file}: sha256 differs from its manifest; corrupt or truncated"
            )
        seen = self._scan(manifest)
        if seen != (manifest.tally, manifest.min_received_at, manifest.max_received_at):
            raise ArchiveError(f"{manifest.file}: its rows do not add up to its manifest")
        return manifest

    def read(self, file: Path) -> Iterator[Record]:
        manifest = self._manifest(file)
        return self._records(manifest)

    def set_aside(self, file: Path) -> None:
        # Renamed, not deleted: an operator deletes `*.superseded` once satisfied. The
        # manifest goes first, so a crash between the two leaves no manifest vouching.
        for path in (manifest_path(file), file):
            if path.exists():
                os.replace(path, path.with_name(path.name + SUPERSEDED_SUFFIX))
        _fsync_directory(self.directory)

    def archived(self, partition: Partition) -> list[ArchiveManifest]:
        found: list[ArchiveManifest] = []
        if not self.directory.is_dir():
            return found
        for attempt in range(self._attempts(partition)):
            path = manifest_path(
                self.directory / data_name(partition.table, partition.start, attempt)
            )
            try:
                manifest = manifest_from_json(path.read_bytes(), directory=self.directory)
            except (*_READ_ERRORS, *_BAD_ROW):
                continue  # absent or unreadable: it cannot vouch for anything
            if manifest.partition == partition:
                found.append(manifest)
        return found

    def _attempts(self, partition: Partition) -> int:
        """How many names were used for the partition, the orphans of a crash included."""
        stem = data_name(partition.table, partition.start, 0).split(".")[0]
        return 1 + sum(1 for _ in self.directory.glob(f"{stem}.*"))

    def _write_data(
        self, temp: Path, records: Iterable[Record]
    ) -> tuple[int, int, datetime | None, datetime | None]:
        rows = 0
        id_sum = 0
        low: datetime | None = None
        high: datetime | None = None
        with temp.open("xb") as raw:
            # mtime=0: the same rows give the same bytes, whatever the hour of the run.
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
                for record in records:
                    packed.write(line_from_record(record))
                    rows += 1
                    id_sum += id_low_bits(record.event_id)
                    moment = record.received_at
                    low = moment if low is None or moment < low else low
                    high = moment if high is None or moment > high else high
            raw.flush()
            os.fsync(raw.fileno())
        return rows, id_sum % 2**64, low, high

    def _claim_name(self, partition: Partition, temp: Path) -> Path:
        """Link the finished file under the first free name: a link never replaces a file."""
        attempt = 0
        while True:
            target = self.directory / data_name(partition.table, partition.start, attempt)
            if not manifest_path(target).exists():
                try:
                    os.link(temp, target)
                except FileExistsError:
                    pass
                else:
                    _fsync_directory(self.directory)
                    return target
            attempt += 1

    def _write_manifest(self, manifest: ArchiveManifest) -> None:
        path = manifest_path(manifest.file)
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with temp.open("xb") as file:
                file.write(manifest_json(manifest))
                file.flush()
                os.fsync(file.fileno())
            os.link(temp, path)  # the manifest is the commit point: it appears whole or not
            _fsync_directory(self.directory)
        finally:
            temp.unlink(missing_ok=True)

    def _manifest(self, file: Path) -> ArchiveManifest:
        path = manifest_path(file)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArchiveError(
                f"{file}: no manifest {path.name} beside it; an archive is trusted only with one"
            ) from None
        except OSError as exc:
            raise ArchiveError(f"{path}: cannot read the manifest: {exc}") from exc
        try:
            return manifest_from_json(data, directory=path.parent)
        except _BAD_ROW as exc:
            raise ArchiveError(f"{path}: not a valid manifest: {exc}") from exc

    def _scan(self, manifest: ArchiveManifest) -> tuple[Tally, datetime | None, datetime | None]:
        rows = id_sum = 0
        low: datetime | None = None
        high: datetime | None = None
        for record in self._records(manifest):
            if record.received_at.date() != manifest.day:
                raise ArchiveError(
                    f"{manifest.file}: a row from {record.received_at} is not of its day"
                )
            rows += 1
            id_sum += id_low_bits(record.event_id)
            low = record.received_at if low is None or record.received_at < low else low
            high = record.received_at if high is None or record.received_at > high else high
        return Tally(rows=rows, id_sum=id_sum % 2**64), low, high

    def _records(self, manifest: ArchiveManifest) -> Iterator[Record]:
        number = 0
        try:
            with gzip.open(manifest.file, "rb") as lines:
                for number, line in enumerate(lines, start=1):  # noqa: B007 - used in the error
                    yield record_from_line(manifest.table, line)
        except _READ_ERRORS as exc:
            raise ArchiveError(f"{manifest.file}: unreadable after line {number}: {exc}") from exc
        except _BAD_ROW as exc:
            raise ArchiveError(f"{manifest.file}: line {number} is not a row: {exc}") from exc
