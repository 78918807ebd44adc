"""A ServerExecutor that adds up what the server read for each query."""

from __future__ import annotations

from typing import Any

from attrs import define
from dedup.adapters.outbound.clickhouse.server_executor import ServerExecutor


@define
class CountingExecutor(ServerExecutor):
    """The worker's ServerExecutor that also adds up what the server read for each query.

    clickhouse-driver keeps the progress the server reported for the last query; reading it
    after each query costs nothing measurable, and shows what grows with the table.
    """

    queries: int = 0
    rows_read: int = 0
    bytes_read: int = 0

    def _run(self, sql: str, params: Any = None, **kwargs: Any) -> Any:
        result = super()._run(sql, params, **kwargs)
        progress = self._driver().last_query.progress
        self.queries += 1
        self.rows_read += progress.rows
        self.bytes_read += progress.bytes
        return result

    def take(self) -> dict[str, int]:
        """The counts since the last take(), and start again from zero."""
        counts = {
            "queries": self.queries,
            "rows_read": self.rows_read,
            "bytes_read": self.bytes_read,
        }
        self.queries = self.rows_read = self.bytes_read = 0
        return counts
