"""The parts of the run's event_fingerprints: what system.parts shows, and merging them."""

from __future__ import annotations

import time
from typing import Any

from dedup.adapters.outbound.clickhouse.miniorm import Statement, qualified
from dedup.adapters.outbound.clickhouse.server_executor import ServerExecutor

from bench.lookup.data import TABLE


def table_state(admin: ServerExecutor, database: str) -> dict[str, Any]:
    """Active parts of the table as system.parts lists them, and merges under way."""
    where = f"database = '{database}' AND table = '{TABLE}'"
    parts, rows, partitions, size, deepest = admin.query(
        Statement.text(
            "SELECT count(), sum(rows), uniqExact(partition_id), sum(bytes_on_disk), max(level)"
            f" FROM system.parts WHERE {where} AND active"
        )
    )[0]
    [(merges,)] = admin.query(Statement.text(f"SELECT count() FROM system.merges WHERE {where}"))
    return {
        "parts": int(parts),
        "rows": int(rows),
        "partitions": int(partitions),
        "bytes_on_disk": int(size),
        "max_level": int(deepest),
        "merges_running": int(merges),
    }


def optimize_final(admin: ServerExecutor, database: str, timeout: float = 1800) -> float:
    """OPTIMIZE ... FINAL each partition until each is one part; the seconds it took.

    Asked per partition (PARTITION ID works on 18.16); an OPTIMIZE does nothing for a
    partition whose parts a background merge holds, so ask again until none has two parts.
    """
    started = time.perf_counter()
    while True:
        pending = admin.query(
            Statement.text(
                f"SELECT partition_id FROM system.parts WHERE database = '{database}'"
                f" AND table = '{TABLE}' AND active GROUP BY partition_id HAVING count() > 1"
            )
        )
        if not pending:
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"OPTIMIZE FINAL: {len(pending)} partitions still unmerged")
        for (partition_id,) in pending:
            admin.execute(
                Statement.text(
                    f"OPTIMIZE TABLE {qualified(database, TABLE)}"
                    f" PARTITION ID '{partition_id}' FINAL"
                )
            )
        time.sleep(0.5)
