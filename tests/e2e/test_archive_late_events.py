"""An archive run racing late events for its day: every row in ClickHouse or a verified file, once.

Late events (a replayed dead letter, a retry that waited out an outage) are published onto the
stack's queue with a received_at nine days back, as the API had stamped them then, and two
workers store them while `dedup archive` runs; DEDUP_ARCHIVE_DROP_DELAY holds each verified
file before its drop, the worst point for an insert to land.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from bench.processes import Process
from dedup.adapters.outbound.celery_queue import CeleryQueue
from dedup.adapters.outbound.file_archiver import FileArchiver
from dedup.domain.event import Event
from dedup.domain.outcome import Duplicate
from dedup.infrastructure.celery_app import create_celery_app

from tests.accounting import Accounting, Ledger, assert_accounting_invariant
from tests.builders import a_copy_of, an_event
from tests.e2e.conftest import BROKER, Stack, StackFactory
from tests.e2e.processes import wait_until

pytestmark = pytest.mark.e2e

DAY = (datetime.now(UTC) - timedelta(days=9)).replace(hour=12, minute=0, second=0, microsecond=0)


class LateEvents:
    """Publishes late events (each second one also sent as a copy) until stopped."""

    def __init__(self, stack: Stack) -> None:
        app = create_celery_app(
            BROKER,
            queue_name=stack.queue,
            dead_letter_queue=f"{stack.queue}.dead",
            dead_letter_exchange=f"{stack.queue}.dlx",
        )
        self.queue = CeleryQueue(app, max_wait_seconds=0.01)
        self.ok_ids: set[UUID] = set()
        self.sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def put(self, count: int) -> None:
        asyncio.run(self._put(count))

    def start(self, *, per_second: int) -> LateEvents:
        self._thread = threading.Thread(target=self._stream, args=(per_second,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(60)
        self.queue.close()

    def _stream(self, per_second: int) -> None:
        while not self._stop.wait(0.1):
            self.put(max(1, per_second // 10))

    async def _put(self, count: int) -> None:
        batch: list[Event] = []
        for n in range(count):
            event = an_event(
                {"action": "late", "n": self.sent + n}, received_at=DAY + timedelta(seconds=n)
            )
            batch += [event, a_copy_of(event)] if n % 2 else [event]
        self.sent += count
        await asyncio.gather(*(self.queue.put([event]) for event in batch))
        self.ok_ids.update(event.event_id for event in batch)


def archived(backups: Path) -> tuple[list[Event], list[Duplicate]]:
    """The rows of every archive file, each verified against its manifest first."""
    archiver = FileArchiver(backups)
    events: list[Event] = []
    duplicates: list[Duplicate] = []
    for file in sorted(backups.rglob("*.jsonl.gz")):
        archiver.verify(file)
        for record in archiver.read(file):
            (events if isinstance(record, Event) else duplicates).append(record)  # type: ignore[arg-type]
    return events, duplicates


def archive_once(stack: Stack, *, drop_delay: str) -> str:
    """`dedup archive` as an operator runs it; its output."""
    env = stack.env | {"DEDUP_ARCHIVE_DROP_DELAY": drop_delay}
    archive = Process.start("archive", env=env, cwd=stack.workdir)
    try:
        wait_until(lambda: archive.popen.poll() is not None, timeout=180, what="the archive run")
    finally:
        archive.kill()
    assert archive.popen.returncode == 0, archive.output()
    return archive.output()


def ledger(stack: Stack) -> Ledger:
    """ClickHouse and the verified archive files together, as one ledger."""
    stored = stack.accounting()
    files_events, files_duplicates = archived(stack.workdir / "var" / "archive")
    return Ledger(
        events=stored.events + Ledger.of(files_events, []).events,
        duplicates=stored.duplicates + Ledger.of([], files_duplicates).duplicates,
    )


def account(stack: Stack, ok_ids: set[UUID]) -> tuple[Accounting, int]:
    """The invariant over ClickHouse and the archive files together; rows of DAY left stored."""
    ledger_now = ledger(stack)
    left = stack.query(
        f"SELECT count() FROM `{stack.database}`.events WHERE toDate(received_at) = '{DAY.date()}'"
    )
    return assert_accounting_invariant(ok_ids, ledger_now), int(left[0][0])


def test_an_archive_run_racing_late_events_loses_none_and_stores_none_twice(
    make_stack: StackFactory,
) -> None:
    stack = make_stack(workers=2, concurrency=16)
    late = LateEvents(stack)
    late.put(200)
    stack.wait_drained()

    late.start(per_second=60)
    # A run whose export meets a new row keeps the day (its tally changed) and drops nothing;
    # runs follow each other until one drops while late rows are stored: the race is met.
    outputs: list[str] = []
    while not any("put back" in output for output in outputs):
        assert len(outputs) < 5, "\n".join(outputs)
        outputs.append(archive_once(stack, drop_delay="4s"))
    late.stop()
    stack.wait_drained()

    first, left = account(stack, late.ok_ids)
    assert first.ok == len(late.ok_ids) > 400
    assert left > 0  # late rows stored during and after the run wait for the next one

    archive_once(stack, drop_delay="0")
    second, left = account(stack, late.ok_ids)
    assert left == 0
    assert (second.stored, second.recorded) == (first.stored, first.recorded)
