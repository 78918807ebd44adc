"""Progress on the console: a bar on a terminal, plain lines in a pipe or a log."""

from __future__ import annotations

import io

from dedup.infrastructure.console_progress import BarProgress, LineProgress, console_progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_and_a_pipe_gets_lines() -> None:
    assert isinstance(console_progress(Terminal()), BarProgress)
    assert isinstance(console_progress(io.StringIO()), LineProgress)


def test_plain_lines_report_the_start_each_tenth_and_every_note() -> None:
    stream = io.StringIO()
    with LineProgress(stream) as progress:
        progress.begin("export events 2026-11-20", 100)
        for _ in range(20):
            progress.advance(5)
        progress.note("dropped events 2026-11-20")

    lines = stream.getvalue().splitlines()
    assert lines[0] == "export events 2026-11-20: 100 rows"
    assert lines[1] == "export events 2026-11-20: 10/100 rows"
    assert lines[-2] == "export events 2026-11-20: 100/100 rows"
    assert lines[-1] == "dropped events 2026-11-20"
    assert len(lines) == 12


def test_the_bar_prints_notes_and_counts_rows() -> None:
    stream = Terminal()
    with BarProgress(stream) as progress:
        progress.begin("export", 10)
        progress.advance(10)
        progress.note("dropped [events] 2026-11-20")

    assert "dropped [events] 2026-11-20" in stream.getvalue()
    assert "10/10" in stream.getvalue()
