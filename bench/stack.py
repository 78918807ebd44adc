"""Start the dedup stack for a benchmark run, find its processes, and remove every trace after.

Only public surfaces are used: the `dedup` CLI, HTTP, the broker queue named by
DEDUP_QUEUE_NAME and the ClickHouse tables `events` and `event_duplicates`.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from attrs import define, field, frozen

from bench import measure
from bench.processes import DEDUP, Process, clean_environment, dedup, wait_ready

BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
REDIS_URL = "redis://127.0.0.1:6379/0"
CLICKHOUSE = "127.0.0.1:9000"
ROOT = Path(__file__).resolve().parents[1]


@frozen
class StackOptions:
    run_id: str
    port: int
    api_workers: int
    worker_concurrency: int | None  # None: the service's own default
    workdir: Path
    worker_processes: int = 1
    extra_env: Mapping[str, str] = field(factory=dict)


class Stack(Protocol):
    """What the benchmark needs from a profile; scenarios call up/settle/counts in that order."""

    name: str
    base_url: str

    def prepare(self) -> None:
        """Create the schema (and whatever the profile needs before the first start)."""
        ...

    def up(self) -> None:
        """Start the processes if they are not running and wait until /health/ready."""
        ...

    def settle(self, load_ended: float, timeout: float) -> measure.Drain:
        """Wait until everything accepted so far is stored; say when that happened."""
        ...

    def counts(self) -> measure.Counts:
        """Exact FINAL counts per scenario tag."""
        ...

    def processes(self) -> dict[str, int]:
        """Root pid of each running role ("api", "worker"); their children belong to them."""
        ...

    def probe(self) -> Callable[[], Mapping[str, int]]:
        """Readings for the once-a-second monitor, on connections of its own."""
        ...

    def describe(self) -> dict[str, object]: ...

    def down(self) -> float:
        """Stop the processes; the seconds it took."""
        ...

    def cleanup(self) -> None:
        """Stop everything and remove the database and queues this run created."""
        ...


def _start_workers(*args: str, processes: int, env: Mapping[str, str], cwd: Path) -> Process:
    """`processes` times `dedup worker`, children of one shell: one process tree, one role.

    dedup names each worker dedup-<pid>@<host> and turns Celery's remote control off, so
    several share a machine. Stopping the shell's process group stops them all.
    """
    command = [DEDUP, "worker", *args]
    if processes > 1:
        loop = f'for i in $(seq {processes}); do "$@" & done; wait'
        command = ["sh", "-c", loop, "sh", *command]
    return Process.run("worker", command, env=env, cwd=cwd)


def _failure_logs(processes: list[Process], lines: int = 40) -> str:
    return "\n".join(
        f"--- {p.name} ---\n" + "\n".join(p.output().splitlines()[-lines:]) for p in processes
    )


@define
class DistributedStack(Stack):
    """API (uvicorn, several processes) + Celery worker on the real RabbitMQ, Redis, ClickHouse."""

    options: StackOptions
    name: str = "distributed"
    database: str = field(init=False)
    queue: str = field(init=False)
    api: Process | None = None
    worker: Process | None = None
    _clickhouse: measure.ServerClickHouse | None = None
    _broker: measure.BrokerQueue | None = None
    drop_seconds: float | None = None
    _probes: list[measure.BrokerQueue | measure.ServerClickHouse] = field(factory=list)

    def __attrs_post_init__(self) -> None:
        self.database = f"bench_{self.options.run_id}"
        self.queue = f"bench.{self.options.run_id}.events"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.options.port}"

    def _env(self) -> dict[str, str]:
        return clean_environment(
            DEDUP_CLICKHOUSE_URL=f"clickhouse://default:@{CLICKHOUSE}/{self.database}",
            DEDUP_REDIS_URL=REDIS_URL,
            DEDUP_BROKER_URL=BROKER_URL,
            DEDUP_QUEUE_NAME=self.queue,
            # A fresh database: the stored filter can answer once refilled, within the run.
            **{"DEDUP_FILTER_SETTLE": "5s"} | self.options.extra_env,
        )

    @property
    def clickhouse(self) -> measure.ServerClickHouse:
        if self._clickhouse is None:
            self._clickhouse = measure.ServerClickHouse(CLICKHOUSE, self.database)
        return self._clickhouse

    @property
    def broker(self) -> measure.BrokerQueue:
        if self._broker is None:
            self._broker = measure.BrokerQueue(BROKER_URL, self.queue)
        return self._broker

    def prepare(self) -> None:
        dedup("migrate", "up", env=self._env(), cwd=self.options.workdir)

    def up(self) -> None:
        if self.api is not None and self.api.popen.poll() is None:
            return
        env, cwd = self._env(), self.options.workdir
        concurrency = self.options.worker_concurrency
        self.worker = _start_workers(
            *(["--concurrency", str(concurrency)] if concurrency else []),
            processes=self.options.worker_processes,
            env=env,
            cwd=cwd,
        )
        self.api = Process.start(
            "serve",
            "--port",
            str(self.options.port),
            "--workers",
            str(self.options.api_workers),
            env=env,
            cwd=cwd,
        )
        wait_ready(self.base_url, self.api, self.worker, timeout=90)

    def settle(self, load_ended: float, timeout: float) -> measure.Drain:
        return measure.wait_drained(
            self.broker, self.clickhouse, load_ended=load_ended, timeout=timeout
        )

    def counts(self) -> measure.Counts:
        return self.clickhouse.counts()

    def processes(self) -> dict[str, int]:
        return {
            role: proc.popen.pid
            for role, proc in (("api", self.api), ("worker", self.worker))
            if proc is not None and proc.popen.poll() is None
        }

    def probe(self) -> Callable[[], Mapping[str, int]]:
        broker = measure.BrokerQueue(BROKER_URL, self.queue)
        clickhouse = measure.ServerClickHouse(CLICKHOUSE, self.database)
        self._probes += [broker, clickhouse]

        def read() -> Mapping[str, int]:
            return {"queue_ready": broker.ready(), "stored_raw": clickhouse.raw_total()}

        return read

    def describe(self) -> dict[str, object]:
        return {
            "profile": self.name,
            "database": self.database,
            "queue": self.queue,
            "api_workers": self.options.api_workers,
            "worker_concurrency": self.options.worker_concurrency,
            "worker_processes": self.options.worker_processes,
            "clickhouse_version": self.clickhouse.version(),
        }

    def down(self) -> float:
        started = time.monotonic()
        for proc in (self.api, self.worker):
            if proc is not None:
                proc.stop(timeout=30)
        return time.monotonic() - started

    def logs(self) -> str:
        return _failure_logs([p for p in (self.api, self.worker) if p is not None])

    def cleanup(self) -> None:
        self.down()
        # No connection of ours may stay open on the database we are about to drop.
        for client in [self._broker, *self._probes]:
            if client is not None:
                client.close()
        measure.BrokerQueue.delete(BROKER_URL, self.queue)
        started = time.monotonic()
        self.clickhouse.drop_database()
        self.clickhouse.close()
        self.drop_seconds = time.monotonic() - started
        if self.drop_seconds > 10:
            print(f"[bench] DROP DATABASE {self.database} took {self.drop_seconds:.0f}s")


@define
class EmbeddedStack(Stack):
    """One `dedup serve` process with chDB and the in-process queue in an empty directory.

    chDB locks its data directory, so counts are read after the process stopped, and a clean
    stop drains the in-process queue first: the time to stop is the drain time (an upper
    bound, it includes the shutdown). Each scenario therefore starts the process again.
    """

    options: StackOptions
    name: str = "embedded"
    api: Process | None = None
    _stopped_after: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.options.port}"

    @property
    def data_path(self) -> Path:
        return self.options.workdir / "var" / "chdb"

    def _env(self) -> dict[str, str]:
        return clean_environment(**self.options.extra_env)

    def prepare(self) -> None:
        dedup("migrate", "up", env=self._env(), cwd=self.options.workdir)

    def up(self) -> None:
        if self.api is not None and self.api.popen.poll() is None:
            return
        self.api = Process.start(
            "serve", "--port", str(self.options.port), env=self._env(), cwd=self.options.workdir
        )
        wait_ready(self.base_url, self.api, timeout=90)

    def settle(self, load_ended: float, timeout: float) -> measure.Drain:
        seconds = self.down()
        return measure.Drain(
            drained=True,
            seconds=time.monotonic() - load_ended,
            at=time.monotonic(),
            method=f"clean stop of the API (drains the in-process queue) took {seconds:.2f}s",
        )

    def counts(self) -> measure.Counts:
        if self.api is not None and self.api.popen.poll() is None:
            raise RuntimeError("chDB is locked by the running API; settle() first")
        return measure.chdb_counts(self.data_path, "dedup")

    def processes(self) -> dict[str, int]:
        if self.api is None or self.api.popen.poll() is not None:
            return {}
        return {"api": self.api.popen.pid}

    def probe(self) -> Callable[[], Mapping[str, int]]:
        return dict  # chDB is locked by the API while it runs: nothing to read from outside

    def describe(self) -> dict[str, object]:
        return {"profile": self.name, "data": str(self.data_path), "api_workers": 1}

    def down(self) -> float:
        started = time.monotonic()
        if self.api is not None:
            self.api.stop(timeout=120)
        return time.monotonic() - started

    def logs(self) -> str:
        return _failure_logs([self.api] if self.api is not None else [])

    def cleanup(self) -> None:
        self.down()


def ensure_services() -> None:
    """The distributed profile's servers: the project's own idempotent script starts them."""
    subprocess.run([str(ROOT / "scripts" / "ensure-services.sh")], check=True)


def create(profile: str, options: StackOptions) -> DistributedStack | EmbeddedStack:
    if profile == "distributed":
        return DistributedStack(options)
    if profile == "embedded":
        return EmbeddedStack(options)
    raise ValueError(f"unknown profile {profile!r}")
