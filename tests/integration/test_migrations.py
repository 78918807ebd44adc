"""The migration runner and the files in migrations/, on ClickHouse 18.16 and on chDB."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dedup.adapters.outbound.clickhouse.chdb_executor import ChdbExecutor
from dedup.adapters.outbound.clickhouse.event_repository import ClickHouseEventRepository
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.inspector import ClickHouseInspector
from dedup.adapters.outbound.clickhouse.mappers import row_from_event
from dedup.adapters.outbound.clickhouse.migration_runner import (
    Migration,
    MigrationError,
    MigrationRunner,
    MigrationStatus,
)
from dedup.adapters.outbound.clickhouse.miniorm import Param, Statement, Table, ident, qualified
from dedup.adapters.outbound.clickhouse.tables import EVENTS, MIGRATED_TABLES
from dedup.domain.standard_fields import StandardFields

from tests.contracts.event_repository_contract import SIGNED_UP, WINDOW_SECONDS, an_event
from tests.integration.conftest import MIGRATIONS, unique_database

FILES = sorted(MIGRATIONS.glob("*.sql"))
STANDARD_COLUMNS = MIGRATIONS / "0005_add_standard_columns.sql"
# events as migrations 0001-0004 left it, before the standard columns.
EVENTS_BEFORE_0005 = Table(name=EVENTS.name, columns=EVENTS.columns[:7], engine=EVENTS.engine)
DDL = ("CREATE", "DROP", "ALTER", "RENAME", "TRUNCATE")


def _tables(executor: Executor, database: str) -> set[str]:
    rows = executor.query(
        Statement(("SELECT name FROM system.tables WHERE database = ", Param(database, "String")))
    )
    return {row[0] for row in rows}


def _runner_over_copies(
    files: list[Path], executor: Executor, database: str, folder: Path
) -> MigrationRunner:
    """A runner over copies of the files, in a folder the test may change."""
    for path in files:
        shutil.copy(path, folder / path.name)
    return MigrationRunner(executor, folder, database)


# --- the files and their rendering (no database needed) ---------------------------------------


def test_every_ddl_statement_names_its_database_and_cluster_placeholders() -> None:
    for migration in map(Migration.load, FILES):
        for sql in migration.up + migration.down:
            assert sql.upper().startswith(DDL), (migration.file, sql)
            assert "{database}." in sql and "{on_cluster}" in sql, (migration.file, sql)


def test_a_cluster_puts_on_cluster_into_every_ddl_statement() -> None:
    never_opened = ChdbExecutor(path="unused")  # rendering needs no engine
    runner = MigrationRunner(never_opened, MIGRATIONS, "dedup", cluster="main")
    [first] = [Migration.load(path) for path in FILES[:1]]
    rendered = runner.render(first.up[0])
    assert rendered.startswith("CREATE TABLE IF NOT EXISTS `dedup`.events ON CLUSTER `main`\n")
    assert "{" not in rendered
    plain = MigrationRunner(never_opened, MIGRATIONS, "dedup")
    assert "ON CLUSTER" not in plain.render(first.up[0])


def test_the_standard_columns_are_added_on_the_cluster_too() -> None:
    never_opened = ChdbExecutor(path="unused")
    runner = MigrationRunner(never_opened, MIGRATIONS, "dedup", cluster="main")
    migration = Migration.load(STANDARD_COLUMNS)
    assert [runner.render(sql).split("\n")[0] for sql in migration.up + migration.down] == [
        "ALTER TABLE `dedup`.events ON CLUSTER `main`"
    ] * 2


def test_a_file_without_both_sections_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "0001_broken.sql"
    bad.write_text(
        "-- migrate:up\nCREATE TABLE {database}.x {on_cluster} (a UInt8) ENGINE = Memory;\n"
    )
    with pytest.raises(MigrationError, match=r"0001_broken\.sql"):
        Migration.load(bad)


def test_statements_split_on_semicolons_at_line_ends_only(tmp_path: Path) -> None:
    path = tmp_path / "0001_split.sql"
    path.write_text(
        "-- migrate:up\nSELECT ';' ;\n-- a comment;\nSELECT 2;\n-- migrate:down\nSELECT 3;\n"
    )
    migration = Migration.load(path)
    assert migration.up == ("SELECT ';'", "SELECT 2")
    assert migration.down == ("SELECT 3",)


# --- against the engines ----------------------------------------------------------------------


@pytest.fixture(params=["server", "chdb"])
def engine(request: pytest.FixtureRequest) -> tuple[Executor, str]:
    if request.param == "server":
        return request.getfixturevalue("clickhouse_server"), request.getfixturevalue(
            "server_database"
        )
    return request.getfixturevalue("chdb_executor"), unique_database()


@pytest.mark.integration
def test_stairway_every_migration_goes_up_down_and_up_again(
    engine: tuple[Executor, str], tmp_path: Path
) -> None:
    executor, database = engine
    runner = MigrationRunner(executor, tmp_path, database)
    for path in FILES:
        shutil.copy(path, tmp_path / path.name)
        assert runner.up() == [path.name]
        assert runner.down() == [path.name]
        assert runner.up() == [path.name]
    assert runner.up() == []
    assert {t.name for t in MIGRATED_TABLES} <= _tables(executor, database)


@pytest.mark.integration
def test_migrated_tables_match_the_adapter_declarations(engine: tuple[Executor, str]) -> None:
    executor, database = engine
    MigrationRunner(executor, MIGRATIONS, database).up()
    for table in MIGRATED_TABLES:
        rows = executor.query(
            Statement.text(f"DESCRIBE TABLE {ident(database)}.{ident(table.name)}")
        )
        assert [(row[0], row[1]) for row in rows] == [(c.name, c.type) for c in table.columns]
    assert "events_fingerprints_mv" in _tables(executor, database)


@pytest.mark.integration
def test_status_reports_applied_migrations_and_down_removes_the_record(
    engine: tuple[Executor, str],
) -> None:
    executor, database = engine
    runner = MigrationRunner(executor, MIGRATIONS, database)
    assert all(not s.applied and s.checksum_ok is None for s in runner.status())
    runner.up()
    assert all(s.applied and s.checksum_ok for s in runner.status())
    last = Migration.load(FILES[-1])
    assert runner.down() == [last.file]
    assert runner.status()[-1] == MigrationStatus(last.version, last.name, False, None)
    runner.down(steps=len(FILES))
    assert _tables(executor, database) == {"schema_migrations"}


@pytest.mark.integration
def test_a_changed_applied_file_stops_the_runner(
    engine: tuple[Executor, str], tmp_path: Path
) -> None:
    executor, database = engine
    runner = _runner_over_copies(FILES, executor, database, tmp_path)
    runner.up()
    changed = tmp_path / FILES[0].name
    changed.write_text(changed.read_text() + "\n-- edited after release\n")
    with pytest.raises(MigrationError, match=FILES[0].name):
        runner.up()
    with pytest.raises(MigrationError, match=FILES[0].name):
        runner.down()
    assert runner.status()[0].checksum_ok is False


def test_the_package_ships_every_migration_file() -> None:
    from dedup.infrastructure.wiring import migrations_folder

    shipped = sorted(p.name for p in migrations_folder(None).iterdir() if p.name.endswith(".sql"))
    assert shipped == [path.name for path in FILES]


@pytest.mark.integration
@pytest.mark.parametrize("action", ["up", "down", "status"])
def test_a_folder_without_migrations_is_refused_and_nothing_is_created(
    engine: tuple[Executor, str], tmp_path: Path, action: str
) -> None:
    executor, database = engine
    (tmp_path / "README").write_text("not a migration")
    runner = MigrationRunner(executor, tmp_path, database)
    with pytest.raises(MigrationError, match="no migration files"):
        getattr(runner, action)()
    rows = executor.query(
        Statement(("SELECT name FROM system.databases WHERE name = ", Param(database, "String")))
    )
    assert rows == []


@pytest.mark.integration
def test_rows_written_before_the_standard_columns_read_them_as_unknown(
    engine: tuple[Executor, str], tmp_path: Path
) -> None:
    executor, database = engine
    before = [path for path in FILES if path != STANDARD_COLUMNS]
    runner = _runner_over_copies(before, executor, database, tmp_path)
    runner.up()
    now = datetime.now(UTC).replace(microsecond=0)
    old = an_event(received_at=now, payload=SIGNED_UP)
    executor.insert(database, EVENTS_BEFORE_0005, [row_from_event(old)[:7]])
    shutil.copy(STANDARD_COLUMNS, tmp_path / STANDARD_COLUMNS.name)

    assert runner.up() == [STANDARD_COLUMNS.name]

    [stored] = ClickHouseInspector(executor, database).events()
    assert (stored.event_id, stored.payload) == (old.event_id, old.payload)
    assert stored.standard == StandardFields()  # the columns' defaults: unknown
    new = an_event(received_at=now, payload={**SIGNED_UP, "messageId": "m-2"})
    repo = ClickHouseEventRepository(
        executor=executor, database=database, window_seconds=WINDOW_SECONDS
    )
    repo.save(events=[new], duplicates=[])
    table = qualified(database, EVENTS.name)
    by_name = Statement(
        (
            f"SELECT event_id, type, user_id, anonymous_id, timestamp FROM {table} WHERE event = ",
            Param("Signed Up", "String"),
        )
    )
    assert executor.query(by_name) == [
        (new.event_id, "track", "u-1", "a-1", datetime(2026, 11, 29, 12, 14, 15, tzinfo=UTC))
    ]
    unknown = f"SELECT event_id FROM {table} WHERE timestamp IS NULL AND event = ''"
    assert executor.query(Statement.text(unknown)) == [(old.event_id,)]

    assert runner.down() == [STANDARD_COLUMNS.name]
    described = executor.query(Statement.text(f"DESCRIBE TABLE {table}"))
    assert [row[0] for row in described] == list(EVENTS_BEFORE_0005.names)
    assert executor.query(Statement.text(f"SELECT count() FROM {table}")) == [(2,)]
