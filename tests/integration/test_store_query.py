"""ClickHouseStoreQuery on ClickHouse 18.16 and on chDB: the engine refuses every write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dedup.adapters.outbound.clickhouse import (
    ChdbExecutor,
    ClickHouseStoreQuery,
    Executor,
    ServerExecutor,
)
from dedup.adapters.outbound.clickhouse.miniorm import Statement, ident
from dedup.application.ports import StoreQuery
from dedup.domain.query import QueryLimits, QueryRefusedError, Refusal

from tests.integration.conftest import unique_database

pytestmark = pytest.mark.integration

LIMITS = QueryLimits(rows=100, seconds=2)
ROWS = 5


def _fill(executor: Executor, database: str) -> None:
    for sql in (
        f"CREATE DATABASE IF NOT EXISTS {ident(database)}",
        f"CREATE TABLE {ident(database)}.kept (n UInt64, s String) ENGINE = MergeTree ORDER BY n",
        f"INSERT INTO {ident(database)}.kept SELECT number, toString(number)"
        f" FROM system.numbers LIMIT {ROWS}",
    ):
        executor.execute(Statement.text(sql))


@pytest.fixture
def on_server(clickhouse_server: ServerExecutor, server_database: str) -> Iterator[StoreQuery]:
    _fill(clickhouse_server, server_database)
    own = ServerExecutor(
        host=clickhouse_server.host, port=clickhouse_server.port, database=server_database
    )
    yield ClickHouseStoreQuery(executor=own)
    own.close()


@pytest.fixture
def on_chdb(chdb_executor: ChdbExecutor) -> Iterator[StoreQuery]:
    database = unique_database()
    _fill(chdb_executor, database)
    # As in the service: the writer keeps its session, queries go through an executor of their own.
    own = ChdbExecutor(path=chdb_executor.path, database=database)
    yield ClickHouseStoreQuery(executor=own)
    own.close()


@pytest.fixture(params=["server", "chdb"])
def store(request: pytest.FixtureRequest) -> StoreQuery:
    return request.getfixturevalue(f"on_{request.param}")  # type: ignore[no-any-return]


def kept(store: StoreQuery) -> list[tuple[object, ...]]:
    return list(store.run("SELECT n, s FROM kept ORDER BY n", limits=LIMITS).rows)


BEFORE = [(n, str(n)) for n in range(ROWS)]


def test_a_select_answers_names_types_and_rows(store):
    result = store.run("SELECT n, s, toDate('2024-03-01') AS d FROM kept ORDER BY n", limits=LIMITS)

    assert [(c.name, c.type) for c in result.columns] == [
        ("n", "UInt64"),
        ("s", "String"),
        ("d", "Date"),
    ]
    assert result.rows == tuple((n, str(n), "2024-03-01") for n in range(ROWS))
    assert not result.truncated


def test_a_trailing_semicolon_is_still_one_statement(store):
    assert store.run("SELECT count() FROM kept;", limits=LIMITS).rows == ((ROWS,),)


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("INSERT INTO kept VALUES (99, 'x')", id="insert-values"),
        pytest.param("INSERT INTO kept SELECT 99, 'x'", id="insert-select"),
        pytest.param("ALTER TABLE kept DELETE WHERE 1", id="alter"),
        pytest.param("DROP TABLE kept", id="drop"),
        pytest.param("TRUNCATE TABLE kept", id="truncate"),
        pytest.param("CREATE TABLE made (n UInt8) ENGINE = Memory", id="create"),
        pytest.param("SELECT n FROM kept SETTINGS readonly = 0", id="settings-readonly-0"),
        pytest.param("SELECT n FROM kept SETTINGS max_execution_time = 1000", id="settings-limit"),
        pytest.param("SET readonly = 0", id="set"),
    ],
)
def test_a_write_or_a_change_of_settings_is_refused_and_changes_nothing(store, sql):
    with pytest.raises(QueryRefusedError) as refused:
        store.run(sql, limits=LIMITS)

    assert refused.value.refusal is Refusal.WRITES
    assert kept(store) == BEFORE
    assert store.run("EXISTS TABLE made", limits=LIMITS).rows == ((0,),)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DROP TABLE kept",
        "SELECT 1; SELECT 2",
        "SELECT 1;\nINSERT INTO kept VALUES (99, 'x')",
    ],
)
def test_a_second_statement_is_refused_and_the_first_does_not_run_it(store, sql):
    with pytest.raises(QueryRefusedError) as refused:
        store.run(sql, limits=LIMITS)

    assert refused.value.refusal is Refusal.INVALID
    assert "Multi-statements" in refused.value.reason
    assert kept(store) == BEFORE


@pytest.mark.parametrize(
    "sql", ["SELEC n FROM kept", "SELECT n FROM no_such_table", "SELECT no_such_column FROM kept"]
)
def test_bad_sql_is_refused_as_invalid_with_the_engines_reason(store, sql):
    with pytest.raises(QueryRefusedError) as refused:
        store.run(sql, limits=LIMITS)

    assert refused.value.refusal is Refusal.INVALID
    assert refused.value.reason


def test_an_answer_past_the_row_limit_is_its_first_rows_marked_cut(store):
    result = store.run(
        "SELECT number FROM system.numbers LIMIT 100000", limits=QueryLimits(rows=7, seconds=5)
    )

    assert result.rows == tuple((n,) for n in range(7))
    assert result.truncated


def test_an_answer_of_exactly_the_limit_is_not_cut(store):
    result = store.run("SELECT n FROM kept ORDER BY n", limits=QueryLimits(rows=ROWS, seconds=5))

    assert len(result.rows) == ROWS
    assert not result.truncated


def test_a_query_past_the_time_limit_is_stopped_and_refused(store):
    # 18.16 refuses table functions under readonly; system.numbers never ends on either engine.
    with pytest.raises(QueryRefusedError) as refused:
        store.run("SELECT count() FROM system.numbers", limits=QueryLimits(rows=10, seconds=1))

    assert refused.value.refusal is Refusal.TIMEOUT


def test_no_file_is_written_by_into_outfile(store, tmp_path: Path):
    target = tmp_path / "written.tsv"
    try:
        store.run(f"SELECT n FROM kept INTO OUTFILE '{target}'", limits=LIMITS)
    except QueryRefusedError as refused:
        assert refused.refusal is Refusal.WRITES  # chDB would write it: it is refused
    assert not target.exists()  # a server leaves INTO OUTFILE to its client, and writes nothing


def test_a_write_through_a_table_function_is_refused(store, tmp_path: Path):
    target = tmp_path / "written.csv"
    sql = f"INSERT INTO FUNCTION file('{target}', 'CSV', 'n UInt64') SELECT 1"
    with pytest.raises(QueryRefusedError):
        store.run(sql, limits=LIMITS)
    assert not target.exists()


def test_the_writer_keeps_writing_beside_a_query_on_chdb(chdb_executor, on_chdb):
    on_chdb.run("SELECT count() FROM kept", limits=LIMITS)
    database = on_chdb.executor.database  # type: ignore[attr-defined]

    chdb_executor.execute(Statement.text(f"INSERT INTO {ident(database)}.kept VALUES (7, '7')"))

    assert on_chdb.run("SELECT count() FROM kept", limits=LIMITS).rows == ((ROWS + 1,),)
