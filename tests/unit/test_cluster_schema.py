"""The migrations laid out over a cluster (cluster_schema.py), and URLs naming several hosts."""

from __future__ import annotations

from pathlib import Path

import pytest
from dedup.adapters.outbound.clickhouse.chdb_executor import ChdbExecutor
from dedup.adapters.outbound.clickhouse.cluster_schema import (
    ClusterSchemaError,
    cluster_statements,
)
from dedup.adapters.outbound.clickhouse.migration_runner import Migration, MigrationRunner
from dedup.adapters.outbound.clickhouse.url import (
    CLUSTER_SETTINGS,
    parse_server_url,
    server_executor_from_url,
)

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
NEVER_OPENED = ChdbExecutor(path="unused")  # rendering needs no engine


def _laid_out(sql: str) -> list[str]:
    return cluster_statements(sql, cluster="main", database="dedup")


def test_a_sharded_table_becomes_a_replicated_local_table_and_a_distributed_one() -> None:
    sql = (
        "CREATE TABLE IF NOT EXISTS {database}.events {on_cluster} (fingerprint FixedString(16))"
        "\nENGINE = ReplacingMergeTree(version)\nORDER BY fingerprint"
    )
    local, distributed = _laid_out(sql)
    assert local.startswith("CREATE TABLE IF NOT EXISTS {database}.events_local {on_cluster} (")
    assert (
        "ENGINE = ReplicatedReplacingMergeTree("
        "'/clickhouse/tables/{shard}/dedup/events_local', '{replica}', version)\nORDER BY"
    ) in local
    assert distributed == (
        "CREATE TABLE IF NOT EXISTS {database}.events {on_cluster} AS {database}.events_local"
        " ENGINE = Distributed('main', 'dedup', 'events_local', sipHash64(fingerprint))"
    )


def test_the_late_row_journal_is_spread_at_random_having_no_fingerprint() -> None:
    """0004 as it is: a Distributed table sharded by a column it lacks could take no insert."""
    (journal,) = [
        statement
        for statement in Migration.load(MIGRATIONS / "0004_create_late_rows.sql").up
        if "late_rows" in statement
    ]
    local, distributed = _laid_out(journal)
    assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/dedup/late_rows_local'" in local
    assert distributed.endswith("Distributed('main', 'dedup', 'late_rows_local', rand())")


def test_an_engine_without_arguments_gets_only_the_path_and_the_replica() -> None:
    sql = (
        "CREATE TABLE {database}.event_duplicates {on_cluster} (a UInt8)"
        " ENGINE = MergeTree() ORDER BY a"
    )
    local, _distributed = _laid_out(sql)
    assert (
        "ENGINE = ReplicatedMergeTree("
        "'/clickhouse/tables/{shard}/dedup/event_duplicates_local', '{replica}') ORDER BY a"
        in local
    )


def test_the_view_reads_and_writes_the_shard_s_own_tables() -> None:
    sql = (
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.events_fingerprints_mv {on_cluster}"
        " TO {database}.event_fingerprints AS SELECT fingerprint FROM {database}.events"
    )
    assert _laid_out(sql) == [
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.events_fingerprints_mv {on_cluster}"
        " TO {database}.event_fingerprints_local AS SELECT fingerprint FROM {database}.events_local"
    ]


def test_an_alter_changes_the_local_table_and_rebuilds_the_distributed_one_over_it() -> None:
    # The shape of migrations/0004 (the standard columns): one ALTER of events.
    sql = (
        "ALTER TABLE {database}.events {on_cluster} ADD COLUMN type String, ADD COLUMN event String"
    )
    alter, drop, create = _laid_out(sql)
    assert (
        alter == "ALTER TABLE {database}.events_local {on_cluster}"
        " ADD COLUMN type String, ADD COLUMN event String"
    )
    assert drop == "DROP TABLE IF EXISTS {database}.events {on_cluster}"
    assert create.startswith(
        "CREATE TABLE IF NOT EXISTS {database}.events {on_cluster}"
        " AS {database}.events_local ENGINE = Distributed("
    )


def test_a_drop_removes_the_distributed_table_first() -> None:
    sql = "DROP TABLE IF EXISTS {database}.event_fingerprints {on_cluster}"
    assert _laid_out(sql) == [
        sql,
        "DROP TABLE IF EXISTS {database}.event_fingerprints_local {on_cluster}",
    ]


def test_statements_about_other_tables_pass_unchanged() -> None:
    sql = "DROP TABLE IF EXISTS {database}.events_fingerprints_mv {on_cluster}"
    assert _laid_out(sql) == [sql]


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO {database}.events SELECT * FROM {database}.events",
        "OPTIMIZE TABLE {database}.events FINAL",
        "RENAME TABLE {database}.events TO {database}.events_old",
    ],
)
def test_a_statement_it_cannot_translate_stops_the_migration(sql: str) -> None:
    with pytest.raises(ClusterSchemaError, match="cannot lay this statement out"):
        _laid_out(sql)


def test_names_that_go_into_paths_must_be_plain() -> None:
    with pytest.raises(ClusterSchemaError, match="database"):
        cluster_statements("DROP TABLE {database}.events {on_cluster}", cluster="c", database="a'b")


def test_every_shipped_migration_lays_out_and_single_servers_see_the_files_as_they_are() -> None:
    cluster = MigrationRunner(NEVER_OPENED, MIGRATIONS, "dedup", cluster="main")
    plain = MigrationRunner(NEVER_OPENED, MIGRATIONS, "dedup")
    for migration in cluster.migrations():
        for sql in migration.up + migration.down:
            assert plain.statements(sql) == [plain.render(sql)]
            for statement in cluster.statements(sql):
                assert "{database}" not in statement and "{on_cluster}" not in statement
                assert "ON CLUSTER `main`" in statement
    [first] = [Migration.load(p) for p in sorted(MIGRATIONS.glob("0001_*.sql"))]
    assert [s.split("(")[0].strip() for s in cluster.statements(first.up[0])] == [
        "CREATE TABLE IF NOT EXISTS `dedup`.events_local ON CLUSTER `main`",
        "CREATE TABLE IF NOT EXISTS `dedup`.events ON CLUSTER `main`"
        " AS `dedup`.events_local ENGINE = Distributed",
    ]


def test_a_url_with_several_hosts_fails_over_to_the_others_in_order() -> None:
    url = parse_server_url("clickhouse://u:p%40ss@h1:9000,h2:9001,[::1]:9002,h4/db")
    assert (url.host, url.port, url.user, url.password, url.database) == (
        "h1",
        9000,
        "u",
        "p@ss",
        "db",
    )
    assert url.alt_hosts == (("h2", 9001), ("::1", 9002), ("h4", 9000))
    assert url.alt_hosts_spec == "h2:9001,[::1]:9002,h4:9000"
    one = parse_server_url("clickhouse://default:@127.0.0.1:9000/dedup")
    assert (one.host, one.port, one.alt_hosts) == ("127.0.0.1", 9000, ())


def test_a_bad_port_in_the_host_list_names_it() -> None:
    with pytest.raises(ValueError, match="h2:x"):
        parse_server_url("clickhouse://h1:9000,h2:x/db")


def test_only_a_cluster_gets_the_cluster_settings() -> None:
    assert (
        server_executor_from_url("clickhouse://h1,h2/db", cluster="main").settings
        == CLUSTER_SETTINGS
    )
    assert server_executor_from_url("clickhouse://h1,h2/db").settings == {}
    assert CLUSTER_SETTINGS["insert_distributed_sync"] == 1
