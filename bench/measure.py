"""What the benchmark reads from outside the service: queue depth, stored rows, process memory.

Counts come from the tables `events` and `event_duplicates` only (FINAL where exactness
matters); each event carries a "scenario" field that the canonical payload keeps, so rows are
attributed to the scenario that sent them, and a duplicate to the scenario of its original.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil
from attrs import define, field, frozen
from clickhouse_driver import Client
from kombu import Connection

SCENARIO = "visitParamExtractString(payload, 'scenario')"
# Plain SQL that runs on ClickHouse 18.16 and on current ClickHouse (chDB) alike. ALL, not ANY:
# current ClickHouse folds left rows that share a key in an ANY join, and an original often
# has two duplicates.
EVENTS_BY_SCENARIO = (
    f"SELECT {SCENARIO} AS scenario, count(), uniqExact(fingerprint) "
    "FROM {db}.events FINAL GROUP BY scenario"
)
DUPLICATES_BY_SCENARIO = (
    "SELECT scenario, count() "
    "FROM (SELECT original_event_id FROM {db}.event_duplicates FINAL) AS d "
    f"ALL INNER JOIN (SELECT event_id AS original_event_id, {SCENARIO} AS scenario "
    "FROM {db}.events FINAL) AS e USING original_event_id GROUP BY scenario"
)
DUPLICATES_TOTAL = "SELECT count() FROM {db}.event_duplicates FINAL"
RAW_TOTAL = "SELECT (SELECT count() FROM {db}.events) + (SELECT count() FROM {db}.event_duplicates)"


@frozen
class ScenarioCounts:
    events: int  # rows in events FINAL
    distinct_fingerprints: int
    duplicates: int  # rows in event_duplicates FINAL whose original is one of these events

    @property
    def accounted(self) -> int:
        return self.events + self.duplicates


@frozen
class Counts:
    """Exact counts per scenario, plus duplicates whose original is not stored (orphans)."""

    scenarios: Mapping[str, ScenarioCounts]
    duplicates_total: int

    @property
    def orphans(self) -> int:
        return self.duplicates_total - sum(s.duplicates for s in self.scenarios.values())

    def of(self, scenario: str) -> ScenarioCounts:
        return self.scenarios.get(scenario, ScenarioCounts(0, 0, 0))

    @classmethod
    def from_rows(cls, events: list[Any], duplicates: list[Any], duplicates_total: int) -> Counts:
        dups = {str(name): int(n) for name, n in duplicates}
        scenarios = {
            str(name): ScenarioCounts(int(n), int(distinct), dups.get(str(name), 0))
            for name, n, distinct in events
        }
        return cls(scenarios, duplicates_total)


@frozen
class Drain:
    drained: bool
    seconds: float  # from the end of the load until the last row was stored
    at: float  # monotonic time of that last row (or of giving up)
    method: str
    ready: int = 0
    unacked: int = 0


# --- ClickHouse ------------------------------------------------------------------------------


@define
class ServerClickHouse:
    """The benchmark's own connection to the ClickHouse server holding the run's database."""

    address: str
    database: str
    _client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            host, _, port = self.address.partition(":")
            self._client = Client(host=host, port=int(port or 9000), connect_timeout=5)
        return self._client

    def query(self, sql: str) -> list[Any]:
        return list(self.client.execute(sql.format(db=self.database)))

    def version(self) -> str:
        return str(self.query("SELECT version()")[0][0])

    def raw_total(self) -> int:
        """events + event_duplicates without FINAL: cheap, and it moves whenever a batch lands."""
        return int(self.query(RAW_TOTAL)[0][0])

    def counts(self) -> Counts:
        return Counts.from_rows(
            self.query(EVENTS_BY_SCENARIO),
            self.query(DUPLICATES_BY_SCENARIO),
            int(self.query(DUPLICATES_TOTAL)[0][0]),
        )

    def drop_database(self) -> None:
        self.query("DROP DATABASE IF EXISTS {db}")

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client = None


def chdb_counts(path: Path, database: str) -> Counts:
    """Counts from an embedded chDB store, read in a child process (chDB is one per process)."""
    queries = [q.format(db=database) for q in (EVENTS_BY_SCENARIO, DUPLICATES_BY_SCENARIO)]
    queries.append(DUPLICATES_TOTAL.format(db=database))
    done = subprocess.run(
        [sys.executable, "-m", "bench.chdb_query", str(path), *queries],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    if done.returncode != 0:
        raise RuntimeError(f"reading chDB at {path} failed:\n{done.stderr[-2000:]}")
    events, duplicates, total = json.loads(done.stdout)
    return Counts.from_rows(events, duplicates, int(total[0][0]))


# --- RabbitMQ --------------------------------------------------------------------------------


@define
class BrokerQueue:
    """Depth of the run's queue: kombu for a cheap poll, rabbitmqctl to count unacked too."""

    url: str
    name: str
    _connection: Connection | None = None

    def ready(self) -> int:
        """Messages waiting (not those a worker holds unacked), by a passive declare."""
        try:
            if self._connection is None:
                self._connection = Connection(self.url, connect_timeout=5)
            ok = self._connection.default_channel.queue_declare(queue=self.name, passive=True)
            return int(ok.message_count)
        except Exception:
            self.close()
            raise

    def depth(self) -> tuple[int, int]:
        """(ready, unacked) of the queue as the broker lists them; rabbitmqctl costs ~1 s."""
        return queue_depths(self.name).get(self.name, (0, 0))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.release()
            self._connection = None

    @staticmethod
    def delete(url: str, name: str) -> None:
        """Delete the run's queues and exchanges: `<name>`, `<name>.dead`, `<name>.dlx`."""
        with Connection(url, connect_timeout=5) as connection:
            channel = connection.default_channel
            for queue in (name, f"{name}.dead"):
                channel.queue_delete(queue=queue)
            for exchange in (name, f"{name}.dlx"):
                channel.exchange_delete(exchange=exchange)


def queue_depths(prefix: str) -> dict[str, tuple[int, int]]:
    """{queue: (ready, unacked)} for the queues whose name starts with prefix."""
    done = subprocess.run(
        ["rabbitmqctl", "list_queues", "-q", "name", "messages_ready", "messages_unacknowledged"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    depths: dict[str, tuple[int, int]] = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(prefix) and parts[1].isdigit():
            depths[parts[0]] = (int(parts[1]), int(parts[2]))
    return depths


def wait_drained(
    broker: BrokerQueue,
    clickhouse: ServerClickHouse,
    *,
    load_ended: float,
    timeout: float,
    settle: float = 1.0,
    interval: float = 0.1,
) -> Drain:
    """Poll until the queue is empty and the stored rows stop moving, confirmed by rabbitmqctl.

    The drain time is when the last row arrived, not when we noticed: counts are polled every
    `interval`, and `settle` seconds without change (plus ready == unacked == 0) end the wait.
    """
    deadline = load_ended + timeout
    last_total = clickhouse.raw_total()
    last_change = time.monotonic()
    ready = 0
    while time.monotonic() < deadline:
        ready = broker.ready()
        total = clickhouse.raw_total()
        now = time.monotonic()
        if total != last_total:
            last_total, last_change = total, now
        if ready == 0 and now - last_change >= settle:
            ready_all, unacked = broker.depth()
            if ready_all == 0 and unacked == 0 and clickhouse.raw_total() == last_total:
                return Drain(
                    True,
                    max(0.0, last_change - load_ended),
                    last_change,
                    f"queue empty (rabbitmqctl: 0 ready, 0 unacked) and stored rows unchanged"
                    f" for {settle:.0f}s; polled every {interval}s",
                )
        time.sleep(interval)
    ready_all, unacked = broker.depth()
    return Drain(
        False,
        time.monotonic() - load_ended,
        time.monotonic(),
        f"not drained within {timeout:.0f}s",
        ready_all,
        unacked,
    )


# --- processes -------------------------------------------------------------------------------


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _usage(processes: list[psutil.Process]) -> tuple[int, float]:
    """(RSS bytes, CPU seconds) summed over processes that still exist."""
    rss, cpu = 0, 0.0
    for proc in processes:
        try:
            with proc.oneshot():
                rss += proc.memory_info().rss
                times = proc.cpu_times()
                cpu += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return rss, cpu


def service_pids() -> dict[str, list[int]]:
    """The shared servers on this machine, by process name: to see who uses the two cores."""
    names = {
        "clickhouse": ("clickhouse-server", "clickhouse"),
        "rabbitmq": ("beam.smp",),
        "redis": ("redis-server",),
    }
    found: dict[str, list[int]] = {role: [] for role in names}
    for proc in psutil.process_iter(["name", "pid"]):
        for role, candidates in names.items():
            if proc.info["name"] in candidates:
                found[role].append(proc.info["pid"])
    return found


@define
class Monitor:
    """Samples every second: RSS and CPU of each role's process tree, queue and stored counts.

    roles() is asked at each tick, so processes that restart (embedded scenarios) are followed.
    extra() adds profile-specific readings (queue depth, stored rows) to each sample.
    """

    roles: Callable[[], Mapping[str, int]]
    extra: Callable[[], Mapping[str, int]] = dict
    interval: float = 1.0
    samples: list[dict[str, Any]] = field(factory=list)
    _stop: threading.Event = field(factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = 0.0

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="bench-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        previous: dict[str, tuple[float, float]] = {}
        services = service_pids()
        while not self._stop.is_set():
            now = time.monotonic()
            sample: dict[str, Any] = {"t": round(now - self._started, 2)}
            trees = {role: _tree(pid) for role, pid in self.roles().items()}
            trees |= {
                role: [p for pid in pids for p in _tree(pid)] for role, pids in services.items()
            }
            trees["wrk"] = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "wrk"]
            for role, procs in trees.items():
                rss, cpu = _usage(procs)
                if role in ("api", "worker"):
                    sample[f"{role}_rss"] = rss
                if role in previous and procs:
                    then, cpu_then = previous[role]
                    sample[f"{role}_cores"] = round(max(0.0, cpu - cpu_then) / (now - then), 3)
                previous[role] = (now, cpu)
            try:
                sample |= self.extra()
            except Exception as exc:
                sample["extra_error"] = repr(exc)
            self.samples.append(sample)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - now)))

    def window(self, start: float, end: float) -> list[dict[str, Any]]:
        """Samples taken between two monotonic instants."""
        lo, hi = start - self._started, end - self._started
        return [s for s in self.samples if lo <= s["t"] <= hi]


def memory_summary(samples: list[dict[str, Any]], role: str) -> dict[str, float] | None:
    """RSS in MiB at the first and last sample of a window, and its maximum."""
    values = [s[f"{role}_rss"] for s in samples if s.get(f"{role}_rss")]
    if not values:
        return None
    mib = 1024 * 1024
    return {
        "start_mib": round(values[0] / mib, 1),
        "end_mib": round(values[-1] / mib, 1),
        "max_mib": round(max(values) / mib, 1),
        "samples": len(values),
    }


def cpu_summary(samples: list[dict[str, Any]]) -> dict[str, float]:
    """Mean cores used per role over a window (2.0 = both cores of this machine)."""
    roles = {key.removesuffix("_cores") for s in samples for key in s if key.endswith("_cores")}
    return {
        role: round(sum(s.get(f"{role}_cores", 0.0) for s in samples) / max(1, len(samples)), 2)
        for role in sorted(roles)
    }
