"""A query's answer on the terminal: a table (rich), or JSON or CSV exactly as answered."""

from __future__ import annotations

import csv
import io
import json

from dedup.domain.query import QueryResult
from rich.console import Console
from rich.table import Table
from rich.text import Text


def as_json(result: QueryResult) -> str:
    """The same document POST /admin/query answers."""
    document = {
        "columns": [{"name": c.name, "type": c.type} for c in result.columns],
        "rows": [list(row) for row in result.rows],
        "truncated": result.truncated,
    }
    return json.dumps(document, ensure_ascii=False)


def _cell(value: object) -> str:
    """Text as it is, NULL as nothing, numbers as JSON writes them, lists and maps as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def as_csv(result: QueryResult) -> str:
    """A header of column names, then one record per row (RFC 4180)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([column.name for column in result.columns])
    writer.writerows([_cell(value) for value in row] for row in result.rows)
    return out.getvalue()


def as_table(result: QueryResult) -> Table:
    table = Table(show_lines=False, header_style="bold")
    for column in result.columns:
        table.add_column(Text.assemble(column.name, "\n", (column.type, "dim")), overflow="fold")
    for row in result.rows:
        table.add_row(*(Text("NULL", "dim") if v is None else Text(_cell(v)) for v in row))
    return table


def truncation_note(result: QueryResult) -> str | None:
    if not result.truncated:
        return None
    return f"the first {len(result.rows)} rows: the query has more (--limit asks for others)"


def show(result: QueryResult, *, fmt: str, out: Console, err: Console) -> None:
    """Print the answer on `out`; a cut answer says so on `err`, except in JSON, which says it."""
    if fmt == "json":
        out.print(as_json(result), markup=False, highlight=False, soft_wrap=True)
        return
    if fmt == "csv":
        out.file.write(as_csv(result))
    else:
        out.print(as_table(result))
    note = truncation_note(result)
    if note is not None:
        err.print(note, markup=False, highlight=False)
