"""`dedup query` output: JSON as the service answers it, CSV by RFC 4180, a table for people."""

from __future__ import annotations

import io
import json

from dedup.domain.query import QueryResult, ResultColumn
from dedup.infrastructure.query_output import as_csv, as_json, show
from rich.console import Console

RESULT = QueryResult(
    columns=(
        ResultColumn("id", "UInt64"),
        ResultColumn("payload", "String"),
        ResultColumn("tags", "Array(String)"),
    ),
    rows=((1, 'say "hi", then go', ["a", "b"]), (2, None, []), (3, "ünïcode\nline", ["c"])),
)


def consoles() -> tuple[Console, io.StringIO, Console, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Console(file=out, width=120), out, Console(file=err, width=120), err


def test_json_is_the_document_the_service_answers():
    assert json.loads(as_json(RESULT)) == {
        "columns": [
            {"name": "id", "type": "UInt64"},
            {"name": "payload", "type": "String"},
            {"name": "tags", "type": "Array(String)"},
        ],
        "rows": [[1, 'say "hi", then go', ["a", "b"]], [2, None, []], [3, "ünïcode\nline", ["c"]]],
        "truncated": False,
    }


def test_csv_quotes_what_needs_quoting_and_writes_null_as_nothing():
    assert as_csv(RESULT) == (
        "id,payload,tags\r\n"
        '1,"say ""hi"", then go","[""a"", ""b""]"\r\n'
        "2,,[]\r\n"
        '3,"ünïcode\nline","[""c""]"\r\n'
    )


def test_printed_json_and_csv_are_exactly_the_documents():
    for fmt, document in (("json", as_json(RESULT) + "\n"), ("csv", as_csv(RESULT))):
        out_console, out, err_console, err = consoles()
        show(RESULT, fmt=fmt, out=out_console, err=err_console)
        assert out.getvalue() == document
        assert err.getvalue() == ""


def test_the_table_names_each_column_with_its_type_and_shows_every_value():
    out_console, out, err_console, _ = consoles()
    show(RESULT, fmt="table", out=out_console, err=err_console)

    text = out.getvalue()
    for piece in ("id", "UInt64", "payload", "Array(String)", "then go", "NULL", '["a", "b"]'):
        assert piece in text


def test_a_cut_answer_says_so_beside_the_rows_and_in_json():
    cut = QueryResult(RESULT.columns, RESULT.rows[:1], truncated=True)
    for fmt in ("table", "csv"):
        out_console, _, err_console, err = consoles()
        show(cut, fmt=fmt, out=out_console, err=err_console)
        assert "the first 1 rows" in err.getvalue()
    assert json.loads(as_json(cut))["truncated"] is True
