"""Polling for end-to-end tests; the processes themselves start through bench/processes.py."""

from __future__ import annotations

import time


def wait_until(predicate, *, timeout: float, interval: float = 0.25, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll until predicate() is truthy; return its value or fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    if not value:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")
    return value
