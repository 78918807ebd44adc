"""Apply the numbered SQL files of a migrations folder in order, record them, roll them back."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime
from importlib.resources.abc import Traversable

from attrs import define, frozen
from dedup.adapters.outbound.clickhouse.cluster_schema import (
    cluster_statements,
    schema_migrations_sql,
)
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.miniorm import Statement, ident, select
from dedup.adapters.outbound.clickhouse.tables import SCHEMA_MIGRATIONS
from dedup.domain.errors import DedupError

_FILE = re.compile(r"^(\d+)_(\w+)\.sql$")
_SECTION = re.compile(r"^--\s*migrate:(up|down)\s*$", re.MULTILINE)
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)


class MigrationError(DedupError):
    """The migrations cannot run as asked; the message names the file."""


@frozen
class MigrationStatus:
    version: int
    name: str
    applied: bool
    checksum_ok: bool | None  # None when not applied


@frozen
class Migration:
    """One file: `NNNN_name.sql` with `-- migrate:up` and `-- migrate:down` sections."""

    version: int
    name: str
    path: Traversable
    checksum: str
    up: tuple[str, ...]
    down: tuple[str, ...]

    @property
    def file(self) -> str:
        return self.path.name

    @classmethod
    def load(cls, path: Traversable) -> Migration:
        match = _FILE.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: expected a name like 0001_create_events.sql")
        data = path.read_bytes()
        sections = _sections(data.decode("utf-8"), path.name)
        return cls(
            version=int(match[1]),
            name=match[2],
            path=path,
            checksum=hashlib.sha256(data).hexdigest(),
            up=sections["up"],
            down=sections["down"],
        )


def _statements(text: str) -> tuple[str, ...]:
    """Split on `;` at a line end; comment lines go, so a comment never becomes a statement."""
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return tuple(part.strip() for part in _STATEMENT_END.split(code) if part.strip())


def _sections(text: str, file: str) -> dict[str, tuple[str, ...]]:
    pieces = _SECTION.split(text)
    found = {pieces[i]: _statements(pieces[i + 1]) for i in range(1, len(pieces), 2)}
    if set(found) != {"up", "down"} or len(pieces) != 5:
        raise MigrationError(f"{file}: needs one '-- migrate:up' and one '-- migrate:down'")
    return found


@define
class MigrationRunner:
    """Applies a folder of migrations to one database, recording each with its file's sha256."""

    executor: Executor
    directory: Traversable  # the package's own (importlib.resources) or DEDUP_MIGRATIONS_DIR
    database: str
    cluster: str | None = None

    def migrations(self) -> list[Migration]:
        if not self.directory.is_dir():
            raise MigrationError(f"{self.directory}: no such folder of migrations")
        files = sorted(
            (p for p in self.directory.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name
        )
        if not files:
            # An empty folder is a broken install or a wrong DEDUP_MIGRATIONS_DIR, never a schema.
            raise MigrationError(
                f"{self.directory}: no migration files (NNNN_name.sql) found;"
                " check DEDUP_MIGRATIONS_DIR or reinstall dedup"
            )
        migrations = [Migration.load(path) for path in files]
        versions = [m.version for m in migrations]
        if len(set(versions)) != len(versions):
            raise MigrationError(f"{self.directory}: two files share a version number")
        return sorted(migrations, key=lambda m: m.version)

    def render(self, sql: str) -> str:
        """A statement of a file with {database} and {on_cluster} filled in."""
        on_cluster = f"ON CLUSTER {ident(self.cluster)}" if self.cluster else ""
        return sql.replace("{database}", ident(self.database)).replace("{on_cluster}", on_cluster)

    def statements(self, sql: str) -> list[str]:
        """What runs for one statement of a file: itself, or its cluster layout, rendered."""
        if not self.cluster:
            return [self.render(sql)]
        laid_out = cluster_statements(sql, cluster=self.cluster, database=self.database)
        return [self.render(statement) for statement in laid_out]

    def _apply(self, sqls: tuple[str, ...]) -> None:
        for sql in sqls:
            for statement in self.statements(sql):
                self.executor.execute(Statement.text(statement))

    def up(self) -> list[str]:
        """Apply every pending migration in order; the names of the files applied."""
        migrations = self.migrations()  # before the database is touched: no files, no change
        self._prepare()
        applied = self._checked_records()
        done: list[str] = []
        for migration in migrations:
            if migration.version not in applied:
                self._apply(migration.up)
                self._record(migration, applied=True)
                done.append(migration.file)
        return done

    def down(self, steps: int = 1) -> list[str]:
        """Roll back the last `steps` applied migrations, newest first."""
        by_version = {m.version: m for m in self.migrations()}
        self._prepare()
        applied = self._checked_records()
        done: list[str] = []
        for version in sorted(applied, reverse=True)[:steps]:
            migration = by_version[version]
            self._apply(migration.down)
            self._record(migration, applied=False)
            done.append(migration.file)
        return done

    def status(self) -> list[MigrationStatus]:
        migrations = self.migrations()
        self._prepare()
        records = self._records()
        return [
            MigrationStatus(
                version=m.version,
                name=m.name,
                applied=m.version in records,
                checksum_ok=(records[m.version] == m.checksum) if m.version in records else None,
            )
            for m in migrations
        ]

    def _prepare(self) -> None:
        on_cluster = self.render("{on_cluster}")
        self.executor.execute(
            Statement.text(f"CREATE DATABASE IF NOT EXISTS {ident(self.database)} {on_cluster}")
        )
        records = (
            schema_migrations_sql(self.database, on_cluster)
            if self.cluster
            else SCHEMA_MIGRATIONS.create_sql(self.database, on_cluster=on_cluster)
        )
        self.executor.execute(Statement.text(records))

    def _records(self) -> dict[int, str]:
        """Applied versions and their checksums: the newest row per version decides."""
        rows = self.executor.query(
            select(
                self.database, SCHEMA_MIGRATIONS, "version", "checksum", "applied", "seq"
            ).statement()
        )
        newest: dict[int, tuple[int, str, int]] = {}
        for version, checksum, applied, seq in rows:
            if version not in newest or seq > newest[version][0]:
                newest[version] = (seq, checksum, applied)
        return {v: checksum for v, (_seq, checksum, applied) in newest.items() if applied}

    def _checked_records(self) -> dict[int, str]:
        records = self._records()
        files = {m.version: m for m in self.migrations()}
        for version, checksum in sorted(records.items()):
            migration = files.get(version)
            if migration is None:
                raise MigrationError(f"migration {version:04d} is applied but has no file")
            if migration.checksum != checksum:
                raise MigrationError(f"{migration.file} changed after it was applied")
        return records

    def _record(self, migration: Migration, *, applied: bool) -> None:
        row = (
            migration.version,
            migration.name,
            migration.checksum,
            datetime.now(UTC).replace(microsecond=0),
            int(applied),
            time.time_ns(),
        )
        self.executor.insert(self.database, SCHEMA_MIGRATIONS, [row])
