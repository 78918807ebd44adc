"""The `dedup` command: serve, worker, beat, migrate, archive, restore, replay-dead, query."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from dedup.infrastructure.settings import Settings, SettingsError, duration

# Where `dedup serve` answers unless told otherwise; `dedup query` asks there first.
DEFAULT_URL = "http://127.0.0.1:8000"


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from dedup.infrastructure.serve import serve

    return serve(settings, host=args.host, port=args.port, workers=args.workers)


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from dedup.infrastructure.worker import run_worker

    return run_worker(settings, concurrency=args.concurrency)


def _beat(settings: Settings, args: argparse.Namespace) -> int:
    from dedup.infrastructure.worker import run_beat

    return run_beat(settings)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from dedup.infrastructure.commands import migrate

    return migrate(settings, action=args.action, steps=args.steps)


def _archive(settings: Settings, args: argparse.Namespace) -> int:
    from dedup.infrastructure.archive_commands import archive

    return archive(settings, older_than=args.older_than, dry_run=args.dry_run)


def _restore(settings: Settings, args: argparse.Namespace) -> int:
    from dedup.infrastructure.archive_commands import restore

    return restore(settings, args.files)


def _replay_dead(settings: Settings, args: argparse.Namespace) -> int:
    from dedup.infrastructure.commands import replay_dead

    return replay_dead(settings)


def _query(settings: Settings, args: argparse.Namespace) -> int:
    from dedup.infrastructure.query_command import query

    return query(settings, args.sql, fmt=args.format, limit=args.limit, url=args.url)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="dedup",
        description="Collect analytics events and store each distinct one exactly once.",
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="API processes")
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run the queue consumer")
    worker.add_argument(
        "--concurrency", type=int, default=None, help="task threads per worker process (default 64)"
    )
    worker.set_defaults(run=_worker)

    beat = commands.add_parser("beat", help="run the scheduler (archive on DEDUP_ARCHIVE_SCHEDULE)")
    beat.set_defaults(run=_beat)

    migrate = commands.add_parser("migrate", help="apply, roll back or list schema migrations")
    migrate.add_argument("action", nargs="?", choices=["up", "down", "status"], default="up")
    migrate.add_argument("--steps", type=int, default=1, help="with down: how many to roll back")
    migrate.set_defaults(run=_migrate)

    archive = commands.add_parser(
        "archive",
        help="export day partitions older than the retention to verified files, then drop them",
    )
    archive.add_argument(
        "--older-than",
        type=duration,
        default=None,
        metavar="AGE",
        help="instead of DEDUP_RETENTION, e.g. 7d",
    )
    archive.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be exported and dropped; change nothing",
    )
    archive.set_defaults(run=_archive)

    restore = commands.add_parser(
        "restore", help="put archived rows back (every file verified first; stored rows skipped)"
    )
    restore.add_argument("files", nargs="+", type=Path, metavar="FILE")
    restore.set_defaults(run=_restore)

    replay = commands.add_parser("replay-dead", help="put dead-lettered batches back on the queue")
    replay.set_defaults(run=_replay_dead)

    query = commands.add_parser(
        "query", help="run one read-only SQL statement, through the running service if one holds it"
    )
    query.add_argument("sql", metavar="SQL")
    query.add_argument("--format", choices=["table", "json", "csv"], default="table")
    query.add_argument("--limit", type=int, default=None, metavar="N", help="rows at most (1000)")
    query.add_argument(
        "--url", default=DEFAULT_URL, help=f"the running service to ask first ({DEFAULT_URL})"
    )
    query.set_defaults(run=_query)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.load()
    except SettingsError as exc:
        print(f"dedup: bad setting: {exc}", file=sys.stderr)
        return 2
    run: Callable[[Settings, argparse.Namespace], int] = args.run
    return run(settings, args)


if __name__ == "__main__":
    sys.exit(main())
