"""CeleryQueue on a real RabbitMQ: publish latency and message sizes recorded, depth asked live."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from uuid import uuid4

import pytest
from celery import Celery
from kombu import Connection
from prometheus_client.parser import text_string_to_metric_families

from adapters.metrics import render
from adapters.outbound.celery_queue import CeleryQueue
from domain.errors import BackendUnavailableError
from infrastructure.celery_app import create_celery_app
from tests.builders import an_event

pytestmark = pytest.mark.integration

BROKER = "amqp://guest:guest@127.0.0.1:5672//"
NOWHERE = "amqp://guest:guest@127.0.0.1:1//"


def a_test_app(broker_url: str = BROKER) -> Celery:
    tag = f"dedup.test.{uuid4().hex[:12]}"
    return create_celery_app(
        broker_url,
        queue_name=f"{tag}.events",
        dead_letter_queue=f"{tag}.dead",
        dead_letter_exchange=f"{tag}.dlx",
    )


def delete_topology(app: Celery) -> None:
    events = app.conf.task_default_queue
    args = app.amqp.queues[events].queue_arguments
    with app.connection_for_write() as connection:
        channel = connection.channel()
        channel.queue_delete(events)
        channel.queue_delete(args["x-dead-letter-routing-key"])
        channel.exchange_delete(events)
        channel.exchange_delete(args["x-dead-letter-exchange"])
        channel.close()


@pytest.fixture(scope="module", autouse=True)
def _rabbitmq() -> None:
    try:
        with Connection(BROKER, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        pytest.fail(f"RabbitMQ is not reachable at {BROKER} (make test starts it): {exc}")


@pytest.fixture
def app() -> Iterator[Celery]:
    app = a_test_app()
    yield app
    delete_topology(app)


@pytest.fixture
def queue(app: Celery) -> Iterator[CeleryQueue]:
    queue = CeleryQueue(app, timeout_seconds=5.0)
    yield queue
    queue.close()


def scraped(name: str) -> float:
    for family in text_string_to_metric_families(render().decode()):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return sample.value
    return 0.0


def test_a_confirmed_publish_records_its_latency_and_its_events(queue):
    published = scraped("dedup_publish_seconds_count")
    events = scraped("dedup_message_events_sum")

    asyncio.run(queue.put([an_event(), an_event(), an_event()]))

    assert scraped("dedup_publish_seconds_count") == published + 1
    assert scraped("dedup_message_events_sum") == events + 3
    assert scraped("dedup_publish_seconds_sum") > 0


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
