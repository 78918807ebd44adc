"""The figures of a measurement: percentiles of the timed runs, and growth across sizes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `fraction` of them at or below."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def timing(seconds: Sequence[float], *, batch_size: int) -> dict[str, Any]:
    median = percentile(seconds, 0.5) * 1000
    return {
        "median_ms": round(median, 2),
        "p90_ms": round(percentile(seconds, 0.9) * 1000, 2),
        "min_ms": round(min(seconds) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2),
        "us_per_fingerprint": round(median * 1000 / batch_size, 2),
        "runs_ms": [round(s * 1000, 2) for s in seconds],
    }


def growth(measurements: list[dict[str, Any]]) -> dict[str, Any]:
    """Per state and lookup: the median at the largest size over the smallest non-empty one."""
    result: dict[str, Any] = {}
    for state in sorted({m["state"] for m in measurements}):
        sized = [m for m in measurements if m["state"] == state and m["fingerprints"] > 0]
        if len(sized) < 2:
            continue
        first, last = sized[0], sized[-1]
        result[state] = {
            "from_fingerprints": first["fingerprints"],
            "to_fingerprints": last["fingerprints"],
            **{
                f"{kind}_median_x": round(last[kind]["median_ms"] / first[kind]["median_ms"], 2)
                for kind in ("owners", "contested", "worker", "worker_new")
            },
            "owners_rows_read_x": round(
                last["owners"]["max_per_batch"]["rows_read"]
                / max(1, first["owners"]["max_per_batch"]["rows_read"]),
                2,
            ),
        }
    return result
