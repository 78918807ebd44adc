"""`dedup archive` and `dedup restore`: build the use cases, run them, report to the operator."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from attrs import frozen
from dedup.application.ports import Lock, Progress
from dedup.application.restore_events import RestoreEvents
from dedup.application.run_retention import RetentionReport, RunRetention, exclusively
from dedup.domain.archive import ArchiveAction, ArchiveError
from dedup.domain.errors import BackendUnavailableError
from dedup.infrastructure.console_progress import console_progress
from dedup.infrastructure.container import Container, close_resources
from dedup.infrastructure.settings import Settings

LOCK_FILE = "archive.lock"


@frozen
class ArchiveTools:
    """What the two commands need; `close` releases every client they opened."""

    retention: RunRetention
    restore: RestoreEvents
    lock: Lock
    close: Callable[[], None]


Build = Callable[[Settings, Progress], ArchiveTools]


def lock_path(settings: Settings) -> Path:
    return settings.data_dir / LOCK_FILE


def build_archive_tools(settings: Settings, progress: Progress) -> ArchiveTools:
    """The objects behind both commands, from the composition root."""
    container = Container(settings=settings)
    container.progress.override(progress)
    return ArchiveTools(
        retention=container.run_retention(),
        restore=container.restore_events(),
        lock=container.archive_lock(),
        close=lambda: close_resources(container),
    )


@contextmanager
def _tools(settings: Settings, build: Build, out: TextIO) -> Iterator[ArchiveTools]:
    """The tools of one command, progress shown on `out`; closed however the command ends."""
    with console_progress(out) as progress:
        tools = build(settings, progress)
        try:
            yield tools
        finally:
            tools.close()


def archive(
    settings: Settings,
    *,
    older_than: timedelta | None,
    dry_run: bool,
    build: Build = build_archive_tools,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Archive and purge once; 0 when done or when another run is already at it."""
    out, err = out or sys.stdout, err or sys.stderr
    with _tools(settings, build, out) as tools:
        try:
            report = tools.retention.execute(older_than=older_than, dry_run=dry_run)
        except (BackendUnavailableError, ArchiveError) as exc:
            print(
                f"dedup archive: stopped: {exc}; every row is still in ClickHouse or in a "
                "verified file, run it again",
                file=err,
            )
            return 1
    if report is None:
        print(
            f"dedup archive: already running (lock {lock_path(settings)}); nothing to do", file=out
        )
        return 0
    print(_summary(report, settings=settings, dry_run=dry_run), file=out)
    return 0


def restore(
    settings: Settings,
    files: Sequence[Path],
    *,
    build: Build = build_archive_tools,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Verify every file, then put back the rows not stored yet; 1 when refused or stopped."""
    out, err = out or sys.stdout, err or sys.stderr
    with _tools(settings, build, out) as tools:
        try:
            with exclusively(tools.lock) as acquired:
                if not acquired:
                    print(
                        f"dedup restore: an archive or restore run holds {lock_path(settings)}; "
                        "try again when it has finished",
                        file=err,
                    )
                    return 1
                restored = tools.restore.execute(files)
        except ArchiveError as exc:
            print(f"dedup restore: refused: {exc}", file=err)
            return 1
        except BackendUnavailableError as exc:
            print(f"dedup restore: stopped: {exc}; running it again is safe", file=err)
            return 1
    rows = sum(f.rows for f in restored)
    inserted = sum(f.inserted for f in restored)
    print(
        f"restored {len(restored)} files: {inserted} of {rows} rows inserted, "
        f"{rows - inserted} were stored already",
        file=out,
    )
    return 0


def _summary(report: RetentionReport, *, settings: Settings, dry_run: bool) -> str:
    aside = {ArchiveAction.KEEP_CHANGED, ArchiveAction.PUT_BACK_LATE}
    moved = [s for s in report.archived if s.action not in aside]
    kept = sum(1 for s in report.archived if s.action is ArchiveAction.KEEP_CHANGED)
    put_back = [s for s in report.archived if s.action is ArchiveAction.PUT_BACK_LATE]
    verb = "would archive" if dry_run else "archived"
    lines = [
        f"{verb} {len(moved)} partitions ({sum(s.rows for s in moved)} rows) to {settings.backups}",
        f"{'would purge' if dry_run else 'purged'} {len(report.purged)} fingerprint partitions "
        f"older than the dedup window ({settings.window.days} days)",
    ]
    if kept:
        lines.append(f"kept {kept} partitions whose rows changed meanwhile; the next run retries")
    if put_back:
        lines.append(
            f"put back {sum(s.rows for s in put_back)} late rows a drop raced, in"
            f" {len(put_back)} partitions; the next run archives them"
        )
    return "\n".join(lines)
