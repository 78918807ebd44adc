"""The publisher reads the broker's failover list as kombu does, node by node, in order."""

from __future__ import annotations

from dedup.adapters.outbound.celery_queue import aiormq_urls
from dedup.infrastructure.celery_app import create_celery_app
from yarl import URL


def test_a_single_broker_is_one_url_with_vhost_slash_as_one_segment() -> None:
    app = create_celery_app("amqp://u:p@h1:5672//")

    assert aiormq_urls(app) == (URL("amqp://u:p@h1:5672/%2F"),)


def test_a_failover_list_is_every_node_in_its_order_each_read_on_its_own() -> None:
    app = create_celery_app("amqp://a:1@h1:5681//;amqps://b:2@h2:5671/vh;pyamqp://c:3@h3:5683/x")

    assert aiormq_urls(app) == (
        URL("amqp://a:1@h1:5681/%2F"),
        URL("amqps://b:2@h2:5671/vh"),
        URL("amqp://c:3@h3:5683/x"),
    )
