"""One poison message in a stream of good ones: only the poison is dead-lettered, at once.

Under load through the API, two messages go straight onto the stack's queue: one whose
events are good but one, which ClickHouse refuses for its content (a received_at past
DateTime's range: TYPE_MISMATCH), and one that does not decode. The dead letters hold just
the refused event and the undecodable message; every good event is stored once; the worker
says why in its log and in dedup_dead_letters_total{reason}.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from bench.processes import free_port
from dedup.application.messages import events_from_message, events_to_message
from dedup.infrastructure.celery_app import create_celery_app
from kombu import Connection

from tests.accounting import assert_accounting_invariant
from tests.builders import an_event
from tests.e2e.conftest import BROKER, StackFactory
from tests.e2e.load import Load
from tests.scrape import value

pytestmark = pytest.mark.e2e

TASK = "events.deduplicate"


def dead_letters(queue: str) -> list[object]:
    """Take every dead letter off the stack's dead-letter queue: each one's argument."""
    taken = []
    with Connection(BROKER) as connection:
        channel = connection.channel()
        while (message := channel.basic_get(f"{queue}.dead", no_ack=True)) is not None:
            args, _kwargs, _embed = json.loads(message.body)
            taken.append(args[0])
        channel.close()
    return taken


def test_only_the_poison_is_dead_lettered_and_every_good_event_is_stored_once(
    make_stack: StackFactory,
) -> None:
    metrics_port = free_port()
    stack = make_stack(workers=1, concurrency=16, metrics_port=str(metrics_port))
    app = create_celery_app(
        BROKER,
        queue_name=stack.queue,
        dead_letter_queue=f"{stack.queue}.dead",
        dead_letter_exchange=f"{stack.queue}.dlx",
    )
    good = [an_event({"action": "beside-poison", "n": n}) for n in range(7)]
    poison = an_event({"action": "poison"}, received_at=datetime(2300, 1, 1, tzinfo=UTC))

    load = Load(stack.base_url, events=600, rate=300, max_copies=2).start()
    app.send_task(TASK, args=(events_to_message([*good[:3], poison, *good[3:]]),))
    app.send_task(TASK, args=([["not", "an", "event"]],))
    load.join()
    stack.wait_drained(timeout=120)

    tally = assert_accounting_invariant(
        load.ok_ids | {e.event_id for e in good}, stack.accounting()
    )
    assert tally.stored == 600 + len(good)
    letters = dead_letters(stack.queue)
    undecodable = [["not", "an", "event"]]
    assert len(letters) == 2 and undecodable in letters
    [refused] = [letter for letter in letters if letter != undecodable]
    assert events_from_message(refused) == [poison]  # alone, as `dedup replay-dead` reads it

    log = "\n".join(worker.output() for worker in stack.workers)
    assert "dead-lettering 1 of the 8 events of a message" in log
    assert "malformed message" in log
    scrape = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    assert value("dedup_dead_letters_total", {"reason": "refused"}, text=scrape) == 1
    assert value("dedup_dead_letters_total", {"reason": "malformed"}, text=scrape) == 1
