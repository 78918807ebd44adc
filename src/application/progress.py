"""Helpers for the Progress port: a silent one, and counting rows as they stream past."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from dedup.application.ports import Progress

T = TypeVar("T")


class NoProgress(Progress):
    """Reports nowhere: for callers that do not watch (tests, the scheduled task)."""

    def begin(self, label: str, total: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass

    def note(self, message: str) -> None:
        pass


def counted(items: Iterable[T], progress: Progress, *, every: int = 1000) -> Iterator[T]:
    """Yield the items, advancing the progress every `every` items and at the end."""
    pending = 0
    for item in items:
        yield item
        pending += 1
        if pending == every:
            progress.advance(pending)
            pending = 0
    if pending:
        progress.advance(pending)
