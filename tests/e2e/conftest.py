"""The distributed stack as real processes: API + worker(s) on their own database, queue and Redis.

Each test gets a unique ClickHouse database and a unique DEDUP_QUEUE_NAME on the shared
ClickHouse and RabbitMQ servers, and a redis-server of its own on a free port (so a test may
flush or restart it without touching anyone else's). Teardown stops the processes, drops the
database and deletes the test's queues and exchanges — nothing that belongs to anyone else.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from attrs import define, field
from bench.processes import Process, clean_environment, dedup, free_port, wait_ready
from dedup.adapters.outbound.clickhouse.miniorm import Statement, ident
from dedup.adapters.outbound.clickhouse.url import server_executor_from_url
from dedup.domain.errors import BackendUnavailableError
from kombu import Connection
from playwright.sync_api import Browser, Page, sync_playwright

from tests.accounting import Ledger
from tests.browser import launch_chromium
from tests.e2e.processes import wait_until
from tests.rabbitmq_cluster import RabbitCluster
from tests.redis_server import RedisServer
from tests.servers import BROKER_URL, CLICKHOUSE_URL, RABBITMQ_API_URL, clickhouse_url
from tests.tcp_proxy import TcpProxy

WORKER_THREADS = 64
# What a browser test's page waits for at most by default: a click stored, a page refreshed.
PAGE_TIMEOUT_MS = 30_000


def _rabbitmq_api_counts(api: str, queue: str) -> tuple[int, int] | None:
    """(ready, unacked) from the management API at `api` (http://user:pass@host:15672)."""
    address = urlsplit(api)
    url = f"{address.scheme}://{address.hostname}:{address.port}/api/queues/%2F/{quote(queue)}"
    try:
        response = httpx.get(url, auth=(address.username or "", address.password or ""), timeout=30)
    except httpx.HTTPError as exc:
        raise RuntimeError(f"RabbitMQ management API at {url}: {exc}") from exc
    if response.status_code == 404:
        return None
    response.raise_for_status()
    found = response.json()
    return int(found.get("messages_ready", 0)), int(found.get("messages_unacknowledged", 0))


def _rabbitmq_counts(queue: str) -> tuple[int, int] | None:
    """(ready, unacked) of a queue as the broker counts them, or None if it is not listed.

    rabbitmqctl (or, for a broker in another container, its management API), because only
    the broker knows how many messages are out unacked (a passive declare counts ready ones).
    """
    if RABBITMQ_API_URL is not None:
        return _rabbitmq_api_counts(RABBITMQ_API_URL, queue)
    done = subprocess.run(
        [
            "rabbitmqctl",
            "list_queues",
            "-q",
            "--no-table-headers",
            "name",
            "messages_ready",
            "messages_unacknowledged",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl list_queues failed: {done.stderr.strip()}")
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == queue:
            return int(parts[1]), int(parts[2])
    return None


@define(frozen=True)
class Broker:
    """The RabbitMQ a stack uses: its URL (a `;` failover list for a cluster) and how to ask
    it for (ready, unacked) counts of a queue, which only the broker knows."""

    url: str
    counts: Callable[[str], tuple[int, int] | None]


SHARED_BROKER = Broker(BROKER_URL, _rabbitmq_counts)


@define
class Stack:
    """A running API with its workers; the handle the e2e tests drive and inspect."""

    base_url: str
    database: str
    queue: str
    env: dict[str, str]
    workdir: Path
    redis: RedisServer
    api: Process
    broker: Broker = SHARED_BROKER
    workers: list[Process] = field(factory=list)
    clickhouse: str = CLICKHOUSE_URL  # the server (or cluster) URL, without the database
    cluster: str | None = None  # DEDUP_CLICKHOUSE_CLUSTER, when on a cluster
    _client: httpx.Client = field(factory=lambda: httpx.Client(timeout=10))

    # --- driving ---------------------------------------------------------------------------

    def post(
        self,
        payload: Any,
        *,
        batch: bool = False,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10,
    ) -> httpx.Response:
        """POST one event (or, with batch=True, a list of them); the raw response."""
        path = "/service-event/batch" if batch else "/service-event/"
        return self._client.post(
            self.base_url + path, json=payload, headers=dict(headers or {}), timeout=timeout
        )

    def start_worker(
        self, *, concurrency: int = WORKER_THREADS, broker_url: str | None = None
    ) -> Process:
        """A worker; `broker_url` gives it another way to the broker than the API's."""
        env = self.env if broker_url is None else self.env | {"DEDUP_BROKER_URL": broker_url}
        worker = Process.start(
            "worker", "--concurrency", str(concurrency), env=env, cwd=self.workdir
        )
        self.workers.append(worker)
        # Celery says "<name> ready." once it consumes; a count of consumers could not tell
        # a new worker from one killed a moment ago that the broker has not dropped yet.
        wait_until(
            lambda: " ready." in worker.output() or worker.popen.poll() is not None,
            timeout=60,
            what="the worker to consume",
        )
        if worker.popen.poll() is not None:
            raise AssertionError(f"the worker exited early:\n{worker.output()}")
        return worker

    def kill_worker(self, worker: Process) -> None:
        """kill -9 the worker (its whole process group), as a crash would."""
        worker.kill()
        self.workers.remove(worker)

    # --- inspecting ------------------------------------------------------------------------

    def accounting(self) -> Ledger:
        """What is stored now, read exactly (FINAL): pass it to assert_accounting_invariant."""
        return Ledger.from_clickhouse(
            self.database,
            url=clickhouse_url(self.database, server=self.clickhouse),
            cluster=self.cluster,
        )

    def depth(self) -> tuple[int, int]:
        """(ready, unacked) messages of the events queue."""
        return self.broker.counts(self.queue) or (0, 0)

    def dead_letters(self) -> int:
        return self._declare_passive(f"{self.queue}.dead")[0]

    def consumers(self) -> int:
        return self._declare_passive(self.queue)[1]

    def wait_drained(self, timeout: float = 60) -> None:
        """Wait until the events queue holds nothing, neither ready nor unacked (retries wait
        unacked in a worker), twice in a row."""
        streak = [0]

        def drained() -> bool:
            try:
                empty = self.depth() == (0, 0)
            except RuntimeError:  # the broker is not answering: nothing can be said
                empty = False
            streak[0] = streak[0] + 1 if empty else 0
            return streak[0] >= 2

        wait_until(drained, timeout=timeout, interval=0.5, what=f"queue {self.queue} to drain")

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        executor = server_executor_from_url(self.clickhouse, cluster=self.cluster)
        try:
            return executor.query(Statement.text(sql))
        finally:
            executor.close()

    def stored(self) -> int:
        """Rows in events now (not FINAL: cheap, for progress checks only)."""
        return int(self.query(f"SELECT count() FROM {ident(self.database)}.events")[0][0])

    def settled_races(self) -> int:
        """Events that were stored and then recorded as a duplicate of the winner: losers of
        the race a lost claim opens (event_fingerprints keeps their rows; events folds them).
        GLOBAL: on a cluster both tables are Distributed (a plain IN there is refused)."""
        db = ident(self.database)
        rows = self.query(
            f"SELECT count() FROM {db}.event_duplicates FINAL"
            f" WHERE event_id GLOBAL IN (SELECT event_id FROM {db}.event_fingerprints)"
        )
        return int(rows[0][0])

    def inserts(self, table: str = "events") -> int:
        """INSERTs into the table so far: the highest block number its parts carry."""
        rows = self.query(
            "SELECT max(max_block_number) FROM system.parts"
            f" WHERE database = '{self.database}' AND table = '{table}'"
        )
        return int(rows[0][0] or 0) if rows else 0

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.output()[-5000:]}" for p in [self.api, *self.workers])

    def _declare_passive(self, name: str) -> tuple[int, int]:
        with Connection(self.broker.url, connect_timeout=5) as connection:
            channel = connection.channel()
            try:
                ok = channel.queue_declare(name, passive=True)
                return int(ok.message_count), int(ok.consumer_count)
            finally:
                channel.close()

    # --- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        self._client.close()
        for process in [*self.workers, self.api]:
            process.stop(timeout=30)
        self.redis.stop()


def _drop_everything(
    database: str, queue: str, broker: str, clickhouse: str, cluster: str | None
) -> None:
    # A cluster is the tests' own and goes, data and all, when the session ends (dropping
    # replicated tables one ZooKeeper node at a time takes minutes after a load).
    try:
        if cluster is None:
            executor = server_executor_from_url(clickhouse)
            executor.execute(Statement.text(f"DROP DATABASE IF EXISTS {ident(database)}"))
            executor.close()
    except BackendUnavailableError:
        pass  # a fault test left the server down: its own finally brings it back
    try:
        with Connection(broker, connect_timeout=5) as connection:
            channel = connection.channel()
            for name in (queue, f"{queue}.dead"):
                channel.queue_delete(name)
            for name in (queue, f"{queue}.dlx"):
                channel.exchange_delete(name)
            channel.close()
    except Exception:  # best effort: a fault test may have left the broker down meanwhile
        pass


StackFactory = Callable[..., Stack]


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[StackFactory]:
    """Build a stack: `make_stack(workers=1, concurrency=64, broker=SHARED_BROKER, **extra_env)`.

    `clickhouse` (a URL without the database) and `cluster` put it on another ClickHouse,
    e.g. the cluster tests' own (tests/clickhouse_cluster.py).
    """
    stacks: list[Stack] = []

    def make(
        *,
        workers: int = 1,
        concurrency: int = WORKER_THREADS,
        broker: Broker = SHARED_BROKER,
        clickhouse: str = CLICKHOUSE_URL,
        cluster: str | None = None,
        **extra: str,
    ) -> Stack:
        tag = f"e2e{uuid.uuid4().hex[:10]}"
        database, queue = f"dedup_{tag}", f"dedup.{tag}.events"
        workdir = tmp_path / tag
        workdir.mkdir()
        redis = RedisServer(port=free_port(), workdir=workdir)
        redis.start()
        settings = {
            "DEDUP_CLICKHOUSE_URL": clickhouse_url(database, server=clickhouse),
            **({"DEDUP_CLICKHOUSE_CLUSTER": cluster} if cluster else {}),
            "DEDUP_REDIS_URL": redis.url,
            "DEDUP_BROKER_URL": broker.url,
            "DEDUP_QUEUE_NAME": queue,
            "DEDUP_DATA_DIR": str(workdir / "var"),
            # The stored filter answers a second after start, so every test runs through it.
            "DEDUP_FILTER_SETTLE": "1s",
            "DEDUP_FILTER_MIB": "4",
        }
        # An extra setting wins, DEDUP_REDIS_URL too (a test on a Redis Cluster).
        settings |= {f"DEDUP_{key.upper()}": value for key, value in extra.items()}
        env = clean_environment(**settings)
        dedup("migrate", "up", env=env, cwd=workdir)
        port = free_port()
        api = Process.start("serve", "--port", str(port), env=env, cwd=workdir)
        stack = Stack(
            base_url=f"http://127.0.0.1:{port}",
            database=database,
            queue=queue,
            env=env,
            workdir=workdir,
            redis=redis,
            api=api,
            broker=broker,
            clickhouse=clickhouse,
            cluster=cluster,
        )
        stacks.append(stack)
        wait_ready(stack.base_url, api)
        for _ in range(workers):
            stack.start_worker(concurrency=concurrency)
        return stack

    yield make
    for stack in stacks:
        stack.stop()
        _drop_everything(
            stack.database, stack.queue, stack.broker.url, stack.clickhouse, stack.cluster
        )
        # The logs stay under tmp_path (pytest keeps the last few runs) for a failure's sake.


@pytest.fixture(scope="session")
def rabbitmq_cluster() -> Iterator[RabbitCluster]:
    """Three clustered RabbitMQ nodes of our own (5681-5683), started once per test run."""
    cluster = RabbitCluster().start()
    print(f"\nrabbitmq cluster of {cluster.size} started in {cluster.started_seconds:.1f}s")
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_broker(rabbitmq_cluster: RabbitCluster) -> Broker:
    """The test cluster as a stack's broker: its failover list, counts from a running node."""
    return Broker(rabbitmq_cluster.url, rabbitmq_cluster.counts)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless chromium (tests/browser.py), one per test module."""
    with sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a browser context of the test's own (no cookies or storage shared)."""
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(PAGE_TIMEOUT_MS)
    yield opened
    context.close()


Relay = Callable[[str], TcpProxy]


@pytest.fixture
def relay() -> Iterator[Relay]:
    """relay(url): a TcpProxy in front of the server `url` names; all stopped after the test."""
    started: list[TcpProxy] = []

    def start(url: str) -> TcpProxy:
        address = urlsplit(url)
        proxy = TcpProxy((address.hostname or "127.0.0.1", address.port or 5672)).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


def relayed(url: str, proxy: TcpProxy) -> str:
    """`url` with its host and port replaced by the relay's."""
    address = urlsplit(url)
    netloc = address.netloc.rsplit("@", 1)
    where = f"127.0.0.1:{proxy.port}"
    return address._replace(netloc=f"{netloc[0]}@{where}" if len(netloc) == 2 else where).geturl()


@pytest.fixture
def stack(make_stack: StackFactory) -> Stack:
    """API + one worker (64 task threads) on a database, queue and Redis of their own."""
    return make_stack()
