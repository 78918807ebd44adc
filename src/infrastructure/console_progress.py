"""The Progress port for a terminal (a rich bar) and for logs and pipes (plain lines)."""

from __future__ import annotations

from types import TracebackType
from typing import TextIO

from dedup.application.ports import Progress
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichBar


class BarProgress(Progress):
    """A live bar per piece of work, notes printed above it; use as a context manager."""

    def __init__(self, stream: TextIO) -> None:
        self._bar = RichBar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=stream),
        )
        self._task: object | None = None

    def __enter__(self) -> BarProgress:
        self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.stop()

    def begin(self, label: str, total: int) -> None:
        self._task = self._bar.add_task(label, total=total)

    def advance(self, rows: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, rows)  # type: ignore[arg-type]

    def note(self, message: str) -> None:
        self._bar.console.print(message, markup=False, highlight=False)


class LineProgress(Progress):
    """One line when work starts, one per tenth done, and every note: readable in a log."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._label = ""
        self._total = self._done = self._shown = 0

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stream.flush()

    def begin(self, label: str, total: int) -> None:
        self._label, self._total, self._done, self._shown = label, total, 0, 0
        self._line(f"{label}: {total} rows")

    def advance(self, rows: int) -> None:
        self._done += rows
        tenth = self._done * 10 // self._total if self._total else 10
        if tenth > self._shown:
            self._shown = tenth
            self._line(f"{self._label}: {self._done}/{self._total} rows")

    def note(self, message: str) -> None:
        self._line(message)

    def _line(self, text: str) -> None:
        print(text, file=self._stream, flush=True)


def console_progress(stream: TextIO) -> BarProgress | LineProgress:
    """A bar on a terminal, plain lines anywhere else."""
    return BarProgress(stream) if stream.isatty() else LineProgress(stream)
