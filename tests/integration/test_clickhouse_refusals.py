"""Real engines: rows refused for what they hold are poison; a missing table is the engine away."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def a_table(executor: Executor, columns: str, engine: str) -> Iterator[str]:
    """`short` in a database of its own, dropped after; yields the database's name."""
    database = unique_database()
    executor.execute(Statement.text(f"CREATE DATABASE {ident(database)}"))
    try:
        executor.execute(
            Statement.text(f"CREATE TABLE {ident(database)}.short ({columns}) ENGINE = {engine}")
        )
        yield database
    finally:
        executor.execute(Statement.text(f"DROP DATABASE {ident(database)}"))


def count_short(executor: Executor, database: str) -> list[tuple[object, ...]]:
    return executor.query(Statement.text(f"SELECT count() FROM {ident(database)}.short"))


def test_rows_the_driver_refuses_are_poison_and_nothing_is_written(
    clickhouse_server: ServerExecutor,
) -> None:
    # A value too long for its FixedString: clickhouse-driver refuses the block with
    # TOO_LARGE_STRING_SIZE (131) before the server sees it, as the server would.
    with a_table(clickhouse_server, "word FixedString(2)", "Memory") as database:
        fixed = Table(name="short", columns=(Column("word", "FixedString(2)"),), engine="Memory")
        with pytest.raises(PoisonEventError, match="refused the rows"):
            clickhouse_server.insert(database, fixed, [(b"ok",), (b"far too long",)])
        assert count_short(clickhouse_server, database) == [(0,)]


def test_rows_a_check_constraint_refuses_on_chdb_are_poison_not_silently_left_out(
    chdb_executor: Executor,
) -> None:
    # chDB's streaming insert (send_insert) returned as if written while leaving out the
    # block a CHECK refused. 18.16 has no CHECK constraints: chDB only.
    columns = "word String, CONSTRAINT short_words CHECK length(word) < 5"
    with a_table(chdb_executor, columns, "MergeTree ORDER BY word") as database:
        words = Table(name="short", columns=(Column("word", STRING),), engine="MergeTree")
        with pytest.raises(PoisonEventError, match="refused the rows"):
            chdb_executor.insert(database, words, [("ok",), ("far too long",), ("fine",)])
        chdb_executor.insert(database, words, [("ok",)])  # the engine goes on taking good rows
        assert count_short(chdb_executor, database) == [(1,)]
