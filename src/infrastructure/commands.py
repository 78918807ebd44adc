"""Short-lived commands: migrate and replay-dead."""

from __future__ import annotations

import sys

from dedup.adapters.outbound.clickhouse import MigrationError, MigrationRunner
from dedup.domain.errors import BackendUnavailableError
from dedup.infrastructure.container import opened
from dedup.infrastructure.settings import Settings
from dedup.infrastructure.wiring import scheme


def migrate(settings: Settings, *, action: str, steps: int = 1) -> int:
    with opened(settings) as container:
        return _migrate(container.migration_runner(), action=action, steps=steps)


def _migrate(runner: MigrationRunner, *, action: str, steps: int) -> int:
    try:
        if action == "up":
            applied = runner.up()
            print("\n".join(f"applied {name}" for name in applied) or "schema is up to date")
        elif action == "down":
            for name in runner.down(steps=steps):
                print(f"rolled back {name}")
        else:
            for status in runner.status():
                state = "applied" if status.applied else "pending"
                if status.checksum_ok is False:
                    state += " (CHANGED since applied)"
                print(f"{status.version:04d} {status.name:40s} {state}")
    except (MigrationError, BackendUnavailableError) as exc:
        print(f"dedup migrate: {exc}", file=sys.stderr)
        return 1
    return 0


def replay_dead(settings: Settings) -> int:
    if scheme(settings.broker_url) == "memory":
        print(
            "dedup replay-dead: the embedded queue has no dead letters; a batch that cannot"
            " be stored is refused with 503 and retried by the client",
            file=sys.stderr,
        )
        return 0
    with opened(settings) as container:
        try:
            count = container.dead_letters().replay()
        except BackendUnavailableError as exc:
            print(f"dedup replay-dead: {exc}", file=sys.stderr)
            return 1
    print(f"replayed {count} dead-lettered message(s)")
    return 0
