"""CeleryQueue on a real RabbitMQ: publish latency and message sizes recorded, depth asked live."""

from __future__ import annotations

import asyncio

import pytest
from dedup.adapters.outbound.celery_queue import CeleryQueue
from dedup.domain.errors import BackendUnavailableError

from tests.builders import an_event
from tests.integration.conftest import NOWHERE, a_test_app
from tests.scrape import value

pytestmark = pytest.mark.integration


def test_a_confirmed_publish_records_its_latency_and_its_events(queue):
    published = value("dedup_publish_seconds_count")
    events = value("dedup_message_events_sum")

    asyncio.run(queue.put([an_event(), an_event(), an_event()]))

    assert value("dedup_publish_seconds_count") == published + 1
    assert value("dedup_message_events_sum") == events + 3
    assert value("dedup_publish_seconds_sum") > 0


def test_depth_counts_the_ready_messages_of_the_events_and_dead_letter_queues(queue):
    assert queue.depth() == {}  # nothing declared yet: nothing to report, and no error

    asyncio.run(queue.put([an_event()]))
    asyncio.run(queue.put([an_event()]))

    assert queue.depth() == {"events": 2, "dead_letters": 0}


def test_depth_of_an_unreachable_broker_is_backend_unavailable():
    app = a_test_app(NOWHERE)
    queue = CeleryQueue(app, timeout_seconds=1.0)
    with pytest.raises(BackendUnavailableError):
        queue.depth()
