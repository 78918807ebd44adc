"""The migrations' statements laid out over a cluster: replicated shards behind Distributed tables.

The files in migrations/ speak of one server (`{database}.events`, `{on_cluster}`), so the
same files run on a single server, on chDB and on a cluster, and their checksums never depend
on where they ran. With DEDUP_CLICKHOUSE_CLUSTER set, each statement about a sharded table is
translated here:

- `CREATE TABLE {database}.T ... ENGINE = XMergeTree(args) ...` becomes the shard's own table
  `T_local` (`ReplicatedXMergeTree('/clickhouse/tables/{shard}/db/T_local', '{replica}',
  args)`, the macros each server fills in) and, under the public name `T`, a `Distributed`
  table over it, sharded by fingerprint: every copy of an event lands on one shard and folds
  there, and its duplicates are recorded beside it;
- `CREATE MATERIALIZED VIEW` reads and writes the shard's own tables (`T_local`), so each
  shard fills its own `event_fingerprints_local` from the rows it stores;
- `ALTER TABLE {database}.T` alters `T_local`, then builds the Distributed `T` anew over it
  (`CREATE TABLE T AS T_local`), so it lists the same columns: 18.16 refuses an ALTER ON
  CLUSTER of a table that is not replicated when the shards are, and a Distributed table
  holds no rows of its own (writes are synchronous), so nothing is lost by re-creating it;
- `DROP TABLE {database}.T` drops both, the Distributed table first.

Any other statement naming a sharded table is refused: a migration the translation does not
understand must stop `dedup migrate`, never build half a cluster.
"""

from __future__ import annotations

import re

from dedup.adapters.outbound.clickhouse.tables import (
    MIGRATED_TABLES,
    SCHEMA_MIGRATIONS,
    SHARDING_KEY,
)
from dedup.domain.errors import DedupError

LOCAL_SUFFIX = "_local"
SHARDED = frozenset(table.name for table in MIGRATED_TABLES)
# Replica paths in ZooKeeper, filled in by each server from its own <macros>.
SHARD_PATH = "/clickhouse/tables/{shard}/%s/%s"
# schema_migrations is one replicated table over every server of the cluster (no shard in
# the path), so whichever server `dedup migrate status` reaches knows what was applied.
EVERYWHERE_PATH = "/clickhouse/tables/all/%s/%s"
EVERYWHERE_REPLICA = "{shard}-{replica}"

_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAMED = re.compile(r"\{database\}\.(\w+)")
_ENGINE = re.compile(r"ENGINE\s*=\s*(\w*MergeTree)\s*(?:\(([^)]*)\))?", re.IGNORECASE)
_CREATE_TABLE = re.compile(r"^CREATE\s+TABLE\b", re.IGNORECASE)
_CREATE_VIEW = re.compile(r"^CREATE\s+MATERIALIZED\s+VIEW\b", re.IGNORECASE)
_ALTER = re.compile(r"^ALTER\s+TABLE\b", re.IGNORECASE)
_DROP = re.compile(r"^DROP\s+TABLE\b", re.IGNORECASE)


class ClusterSchemaError(DedupError):
    """A migration statement the cluster layout cannot translate; the message quotes it."""


def literal(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def checked_name(name: str, what: str) -> str:
    """A name that goes into ZooKeeper paths and engine arguments: plain identifiers only."""
    if not _SAFE_NAME.match(name):
        raise ClusterSchemaError(f"{what} {name!r}: on a cluster only [A-Za-z0-9_] names work")
    return name


def replicated_engine(engine_sql: str, *, path: str, replica: str) -> str:
    """`ENGINE = XMergeTree(args) rest` as `ENGINE = ReplicatedXMergeTree(path, replica, args)`."""
    match = _ENGINE.search(engine_sql)
    if match is None:
        raise ClusterSchemaError(f"no MergeTree engine to replicate in: {engine_sql}")
    family, args = match[1], (match[2] or "").strip()
    arguments = ", ".join([literal(path), literal(replica), *([args] if args else [])])
    replicated = f"ENGINE = Replicated{family}({arguments})"
    return engine_sql[: match.start()] + replicated + engine_sql[match.end() :]


def schema_migrations_sql(database: str, on_cluster: str) -> str:
    """The migration records, one replicated table over the whole cluster."""
    checked_name(database, "database")
    create = SCHEMA_MIGRATIONS.create_sql(database, on_cluster=on_cluster)
    path = EVERYWHERE_PATH % (database, SCHEMA_MIGRATIONS.name)
    return replicated_engine(create, path=path, replica=EVERYWHERE_REPLICA)


def cluster_statements(sql: str, *, cluster: str, database: str) -> list[str]:
    """One statement of a file as the statements that apply it on `cluster`, in order."""
    named = [name for name in _NAMED.findall(sql) if name in SHARDED]
    if not named:
        return [sql]
    checked_name(database, "database")
    checked_name(cluster, "cluster")
    statement = sql.lstrip()
    if _CREATE_VIEW.match(statement):
        return [_localised(sql)]
    table = named[0]
    if _CREATE_TABLE.match(statement) and len(named) == 1:
        return _create(sql, table, cluster=cluster, database=database)
    if _ALTER.match(statement) and len(named) == 1:
        drop = f"DROP TABLE IF EXISTS {{database}}.{table} {{on_cluster}}"
        return [_renamed(sql, table), drop, _distributed(table, cluster, database)]
    if _DROP.match(statement) and len(named) == 1:
        return [sql, _renamed(sql, table)]
    raise ClusterSchemaError(f"cannot lay this statement out over a cluster: {sql}")


def _renamed(sql: str, table: str) -> str:
    """The statement about the shard's own table instead of the Distributed one."""
    local = f"{{database}}.{table}{LOCAL_SUFFIX}"
    return re.sub(rf"\{{database\}}\.{table}\b", local, sql, count=1)


def _localised(sql: str) -> str:
    def local(match: re.Match[str]) -> str:
        name = match[1]
        return f"{{database}}.{name}{LOCAL_SUFFIX}" if name in SHARDED else match[0]

    return _NAMED.sub(local, sql)


def _create(sql: str, table: str, *, cluster: str, database: str) -> list[str]:
    engine_at = _ENGINE.search(sql)
    if engine_at is None:
        raise ClusterSchemaError(f"a sharded table needs a MergeTree engine: {sql}")
    path = SHARD_PATH % (database, table + LOCAL_SUFFIX)
    local = replicated_engine(_renamed(sql, table), path=path, replica="{replica}")
    return [local, _distributed(table, cluster, database)]


def _distributed(table: str, cluster: str, database: str) -> str:
    """The public table over every shard's `T_local`, with its columns, by fingerprint."""
    local = table + LOCAL_SUFFIX
    arguments = ", ".join(
        (literal(cluster), literal(database), literal(local), SHARDING_KEY[table])
    )
    return (
        f"CREATE TABLE IF NOT EXISTS {{database}}.{table} {{on_cluster}}"
        f" AS {{database}}.{local} ENGINE = Distributed({arguments})"
    )
