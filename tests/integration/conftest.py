"""Fixtures for the integration suites, one section per backend."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import redis
from celery import Celery
from dedup.adapters.outbound.celery_queue import CeleryQueue
from dedup.adapters.outbound.clickhouse.chdb_executor import ChdbExecutor
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.migration_runner import MigrationRunner
from dedup.adapters.outbound.clickhouse.miniorm import Statement, ident
from dedup.adapters.outbound.clickhouse.server_executor import ServerExecutor
from dedup.adapters.outbound.clickhouse.url import server_executor_from_url
from dedup.domain.errors import BackendUnavailableError
from dedup.infrastructure.celery_app import create_celery_app
from kombu import Connection

from tests.servers import BROKER_URL, CLICKHOUSE_URL, REDIS_URL

# --- clickhouse: per-test databases on the server, per-test directories for chDB ---

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def unique_database() -> str:
    return f"dedup_test_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def clickhouse_server() -> Iterator[ServerExecutor]:
    """A server executor, once the server answers (scripts/ensure-clickhouse.sh starts one)."""
    executor = server_executor_from_url(CLICKHOUSE_URL)
    deadline = time.monotonic() + 30
    while True:
        try:
            executor.query(Statement.text("SELECT 1"))
            break
        except BackendUnavailableError:
            if time.monotonic() > deadline:
                hint = "run scripts/ensure-clickhouse.sh"
                pytest.fail(f"ClickHouse at {CLICKHOUSE_URL} did not answer; {hint}")
            time.sleep(0.5)
    yield executor
    executor.close()


@pytest.fixture
def server_database(clickhouse_server: ServerExecutor) -> Iterator[str]:
    """A fresh database name on the server, dropped afterwards (only this test's database)."""
    database = unique_database()
    yield database
    clickhouse_server.execute(Statement.text(f"DROP DATABASE IF EXISTS {ident(database)}"))


@pytest.fixture
def migrated_server(
    clickhouse_server: ServerExecutor, server_database: str
) -> tuple[Executor, str]:
    MigrationRunner(clickhouse_server, MIGRATIONS, server_database).up()
    return clickhouse_server, server_database


@pytest.fixture
def chdb_executor(tmp_path: Path) -> Iterator[ChdbExecutor]:
    """chDB in this test's own directory; closed after, since a process holds one path at a time."""
    executor = ChdbExecutor(path=str(tmp_path / "chdb"))
    yield executor
    executor.close()


@pytest.fixture
def migrated_chdb(chdb_executor: ChdbExecutor) -> tuple[Executor, str]:
    database = unique_database()
    MigrationRunner(chdb_executor, MIGRATIONS, database).up()
    return chdb_executor, database


# --- rabbitmq: a Celery app per test on queues and exchanges no other test uses ---

NOWHERE = "amqp://guest:guest@127.0.0.1:1//"


def a_test_app(broker_url: str = BROKER_URL) -> Celery:
    """An app on its own events queue, dead-letter queue and exchanges."""
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


@pytest.fixture(scope="session")
def rabbitmq() -> str:
    """The broker URL, once it answers; make test starts it, so its absence is a failure."""
    try:
        with Connection(BROKER_URL, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        pytest.fail(f"RabbitMQ is not reachable at {BROKER_URL} (make test starts it): {exc}")
    return BROKER_URL


@pytest.fixture
def app(rabbitmq: str) -> Iterator[Celery]:
    app = a_test_app(rabbitmq)
    yield app
    delete_topology(app)


@pytest.fixture
def queue(app: Celery) -> Iterator[CeleryQueue]:
    queue = CeleryQueue(app, timeout_seconds=5.0)
    yield queue
    queue.close()


# --- Redis: the shared server, a key space of each test's own --------------------------------


def _ready(client: redis.Redis[bytes], *, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def client() -> Iterator[redis.Redis[bytes]]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    _ready(client)
    yield client
    client.close()


@pytest.fixture
def prefix(client: redis.Redis[bytes]) -> Iterator[str]:
    """A key space of this test's own, deleted afterwards (never FLUSHDB: Redis is shared)."""
    prefix = f"test:dedup:{uuid.uuid4().hex}:"
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
