"""CeleryQueue on a failover list of broker nodes: put() and ping() move to the next node.

The "nodes" are relays to the one RabbitMQ of the suite (or a port nobody listens on), so a
node can be taken away under the publisher; tests/e2e/test_broker_cluster.py does the same
on a real three-node cluster.
"""

from __future__ import annotations

import asyncio

import pytest
from celery import Celery
from dedup.adapters.outbound.celery_queue import CeleryQueue
from dedup.domain.errors import BackendUnavailableError

from tests.builders import an_event
from tests.integration.conftest import NOWHERE
from tests.integration.test_celery_queue import BrokerRelay, drain, gives_up_by_itself, via

pytestmark = pytest.mark.integration

ALSO_NOWHERE = "amqp://guest:guest@127.0.0.1:2//"


def test_with_its_first_node_down_put_and_ping_use_the_next_one(app: Celery) -> None:
    queue = CeleryQueue(via(f"{NOWHERE};{app.conf.broker_url}", app), timeout_seconds=5.0)
    try:
        queue.ping()
        asyncio.run(queue.put([an_event()]))
    finally:
        queue.close()

    assert len(drain(app, app.conf.task_default_queue)) == 1


def test_when_its_node_goes_the_publisher_moves_to_the_next_and_stays_there(app: Celery) -> None:
    async def main() -> tuple[int, int]:
        async with BrokerRelay() as first, BrokerRelay() as second:
            queue = CeleryQueue(via(f"{first.url};{second.url}", app))
            await queue.put([an_event()])
            assert (first.connections, second.connections) == (1, 0)

            await first.go_away()
            await queue.put([an_event()])
            await queue.put([an_event()])

            await queue.aclose()
            return first.connections, second.connections

    assert asyncio.run(main()) == (1, 1)
    assert len(drain(app, app.conf.task_default_queue)) == 3


def test_with_every_node_down_put_and_ping_fail_as_unavailable(app: Celery) -> None:
    queue = CeleryQueue(via(f"{NOWHERE};{ALSO_NOWHERE}", app), timeout_seconds=2.0)
    try:
        with pytest.raises(BackendUnavailableError) as caught:
            asyncio.run(gives_up_by_itself(queue.put([an_event()])))
        assert caught.value.backend == "broker"
        with pytest.raises(BackendUnavailableError):
            queue.ping()
    finally:
        queue.close()
