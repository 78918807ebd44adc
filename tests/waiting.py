"""Polling for a state another thread or process makes, where there is no event to wait on."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], *, timeout: float, interval: float = 0.25, what: str = "condition"
) -> T:
    """Poll until predicate() is truthy; return its value or fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    if not value:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")
    return value
