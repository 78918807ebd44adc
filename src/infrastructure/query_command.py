"""`dedup query SQL`: through the running service when one answers, else on the store itself."""

from __future__ import annotations

import sys

from dedup.adapters.outbound.http_store_query import NoServiceError
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.query import QueryRefusedError, QueryResult
from dedup.infrastructure.container import opened
from dedup.infrastructure.query_output import show
from dedup.infrastructure.settings import Settings
from rich.console import Console


def _answer(settings: Settings, sql: str, *, limit: int | None, url: str) -> QueryResult:
    with opened(settings) as container:
        try:
            # The embedded store belongs to the process that serves it: ask that process.
            return container.served_run_query(store__base_url=url).execute(sql, rows=limit)
        except NoServiceError:
            pass
        return container.run_query().execute(sql, rows=limit)


def query(settings: Settings, sql: str, *, fmt: str, limit: int | None, url: str) -> int:
    err = Console(stderr=True)
    try:
        result = _answer(settings, sql, limit=limit, url=url)
    except QueryRefusedError as exc:
        err.print(f"dedup query: refused: {exc.reason}", markup=False, highlight=False)
        return 1
    except BackendUnavailableError as exc:
        hint = f" (no service answers at {url}; --url names the one that runs)"
        err.print(f"dedup query: {exc}{hint}", markup=False, highlight=False)
        return 1
    show(result, fmt=fmt, out=Console(file=sys.stdout), err=err)
    return 0
