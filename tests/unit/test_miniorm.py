"""MiniORM: identifiers are quoted, values never reach the SQL text, and round-trip exactly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
from dedup.adapters.outbound.clickhouse import rowbinary
from dedup.adapters.outbound.clickhouse.chdb_executor import ChdbExecutor, chdb_param
from dedup.adapters.outbound.clickhouse.miniorm import (
    Column,
    Param,
    Statement,
    among,
    ge,
    ident,
    listed,
    select,
)
from dedup.adapters.outbound.clickhouse.server_executor import server_query, server_value
from dedup.adapters.outbound.clickhouse.tables import EVENT_DUPLICATES, EVENT_FINGERPRINTS

HOSTILE = [
    "'); DROP TABLE events; --",
    "back\\slash \\' \\\\",
    "line\nbreak\ttab\rreturn",
    "unicode é ü 😀 中文",
    "nul \x00 byte",
    "{p0:String} %(p0)s ?",
    "",
]
BINARY = [bytes(range(16)), b"\xff" * 16, b"'\\\n\"" + b"\x00" * 12]


def test_identifiers_are_backquoted_and_escaped() -> None:
    assert ident("events") == "`events`"
    assert ident("we`ird\\") == "`we\\`ird\\\\`"


def test_a_select_binds_every_value_as_a_parameter() -> None:
    query = select("db", EVENT_FINGERPRINTS, "fingerprint", "event_id").where(
        among(EVENT_FINGERPRINTS["fingerprint"], [b"a" * 16, b"b" * 16]),
        ge(EVENT_FINGERPRINTS["received_at"], datetime(2024, 1, 2, tzinfo=UTC)),
    )
    sql, params = query.statement().render(lambda name, param: f"<{name}:{param.type}>")
    assert sql == (
        "SELECT `fingerprint`, `event_id` FROM `db`.`event_fingerprints`"
        " WHERE `fingerprint` IN <p0:Array(FixedString(16))>"
        " AND `received_at` >= <p1:DateTime('UTC')>"
    )
    assert params["p0"].value == (b"a" * 16, b"b" * 16)


def test_final_is_rendered_after_the_table() -> None:
    sql, _ = select("db", EVENT_DUPLICATES, "event_id", final=True).statement().render(str)
    assert sql == "SELECT `event_id` FROM `db`.`event_duplicates` FINAL"


def test_bytes_reach_theserver_query_as_hex_escapes_only() -> None:
    assert str(server_value(b"\x00'\\\xff")) == "'\\x00\\x27\\x5C\\xFF'"


def test_a_set_reaches_the_server_as_an_external_table_not_as_text() -> None:
    fps = EVENT_FINGERPRINTS
    statement = Statement(
        (
            "SELECT 1 WHERE ",
            *among(fps["fingerprint"], [b"\x01" * 16, b"'" * 16]).parts,
            " AND ",
            *ge(fps["received_at"], datetime(2024, 1, 2, tzinfo=UTC)).parts,
        )
    )
    sql, values, sets = server_query(statement)
    assert sql == "SELECT 1 WHERE `fingerprint` IN _p0 AND `received_at` >= %(p1)s"
    assert values is not None and str(values["p1"]) == "toDateTime(1704153600)"
    assert sets == [
        {
            "name": "_p0",
            "structure": [("value", "FixedString(16)")],
            "data": [(b"\x01" * 16,), (b"'" * 16,)],
        }
    ]


def test_chdb_params_escape_backslashes_and_control_characters() -> None:
    assert chdb_param("a\\b\nc") == "a\\\\b\\nc"
    assert chdb_param(("x'y", 3)) == "['x\\'y',3]"
    assert chdb_param(UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert chdb_param(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02 03:04:05"


def test_rowbinary_decodes_what_it_encodes() -> None:
    types = ["UUID", "FixedString(4)", "String", "DateTime('UTC')", "Enum8('a' = 1, 'b' = 2)"]
    row = (UUID(int=2**127 + 5), b"\x00\xff\x00\x00", "é'\n", datetime(2024, 1, 2, tzinfo=UTC), "b")
    header = bytes([len(types)]) + b"".join(
        bytes([len(text)]) + text.encode() for text in ["u", "f", "s", "d", "e", *types]
    )
    decoded_types, rows = rowbinary.decode_with_names_and_types(
        header + rowbinary.encode(types, [row, row])
    )
    assert decoded_types == types
    assert rows == [row, row]


@pytest.fixture
def chdb(tmp_path: Path) -> Iterator[ChdbExecutor]:
    executor = ChdbExecutor(path=str(tmp_path / "chdb"))
    yield executor
    executor.close()


def test_hostile_strings_round_trip_through_chdb_parameters(chdb: ChdbExecutor) -> None:
    for text in HOSTILE:
        assert chdb.query(Statement(("SELECT ", Param(text, "String")))) == [(text,)]
    rows = chdb.query(Statement(("SELECT ", Param(tuple(HOSTILE), "Array(String)"))))
    assert rows == [(HOSTILE,)]


def test_binary_values_round_trip_through_chdb_parameters(chdb: ChdbExecutor) -> None:
    for data in BINARY:
        assert chdb.query(Statement(("SELECT ", Param(data, "FixedString(16)")))) == [(data,)]
    query = Statement(
        (
            "SELECT ",
            Param(BINARY[2], "FixedString(16)"),
            " IN ",
            Param(tuple(BINARY), "Array(FixedString(16))"),
        )
    )
    assert chdb.query(query) == [(1,)]


def test_a_short_list_binds_each_value_alone() -> None:
    statement = Statement(listed(Column("_part", "String"), ["b", "a"]).parts)
    sql, params = statement.render(lambda name, _param: f"{{{name}}}")
    assert sql == "`_part` IN ({p0}, {p1})"
    assert [p.value for p in params.values()] == ["b", "a"]
