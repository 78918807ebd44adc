"""Real engines: rows refused for what they hold are poison; a missing table is the engine away."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dedup.adapters.outbound.clickhouse.column_types import STRING
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.miniorm import Column, Statement, Table, ident
from dedup.adapters.outbound.clickhouse.server_executor import ServerExecutor
from dedup.domain.errors import BackendUnavailableError, PoisonEventError

from tests.integration.conftest import unique_database

pytestmark = pytest.mark.integration

SHORT = Table(name="short", columns=(Column("word", STRING),), engine="Memory")


@pytest.mark.parametrize("engine", ["server", "chdb"])
def test_an_insert_into_a_missing_table_is_the_engine_unavailable_not_poison(
    engine: str, request: pytest.FixtureRequest
) -> None:
    executor: Executor = request.getfixturevalue(
        "clickhouse_server" if engine == "server" else "chdb_executor"
    )
    with pytest.raises(BackendUnavailableError) as caught:
        executor.insert(unique_database(), SHORT, [(datetime.now(UTC).isoformat(),)])
    assert not isinstance(caught.value, PoisonEventError)


def test_rows_the_driver_refuses_are_poison_and_nothing_is_written(
    clickhouse_server: ServerExecutor,
) -> None:
    # A value too long for its FixedString: clickhouse-driver refuses the block with
    # TOO_LARGE_STRING_SIZE (131) before the server sees it, as the server would.
    database = unique_database()
    clickhouse_server.execute(Statement.text(f"CREATE DATABASE {ident(database)}"))
    try:
        clickhouse_server.execute(
            Statement.text(
                f"CREATE TABLE {ident(database)}.short (word FixedString(2)) ENGINE = Memory"
            )
        )
        fixed = Table(name="short", columns=(Column("word", "FixedString(2)"),), engine="Memory")
        with pytest.raises(PoisonEventError, match="refused the rows"):
            clickhouse_server.insert(database, fixed, [(b"ok",), (b"far too long",)])
        count = clickhouse_server.query(
            Statement.text(f"SELECT count() FROM {ident(database)}.short")
        )
        assert count == [(0,)]
    finally:
        clickhouse_server.execute(Statement.text(f"DROP DATABASE {ident(database)}"))


def test_rows_a_check_constraint_refuses_on_chdb_are_poison_not_silently_left_out(
    chdb_executor: Executor,
) -> None:
    # chDB's streaming insert (send_insert) returned as if written while leaving out the
    # block a CHECK refused. 18.16 has no CHECK constraints: chDB only.
    executor = chdb_executor
    database = unique_database()
    executor.execute(Statement.text(f"CREATE DATABASE {ident(database)}"))
    try:
        executor.execute(
            Statement.text(
                f"CREATE TABLE {ident(database)}.short (word String,"
                " CONSTRAINT short_words CHECK length(word) < 5) ENGINE = MergeTree ORDER BY word"
            )
        )
        words = Table(name="short", columns=(Column("word", STRING),), engine="MergeTree")
        with pytest.raises(PoisonEventError, match="refused the rows"):
            executor.insert(database, words, [("ok",), ("far too long",), ("fine",)])
        executor.insert(database, words, [("ok",)])  # the engine goes on taking good rows
        count = executor.query(Statement.text(f"SELECT count() FROM {ident(database)}.short"))
        assert count == [(1,)]
    finally:
        executor.execute(Statement.text(f"DROP DATABASE {ident(database)}"))
