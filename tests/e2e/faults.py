"""Breaking shared services on purpose, and always bringing them back; the check after a fault."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.accounting import Accounting, assert_accounting_invariant
from tests.e2e.conftest import Stack
from tests.e2e.load import Load
from tests.e2e.processes import wait_until

ROOT = Path(__file__).resolve().parents[2]
CLICKHOUSE_PORT = 9000


def settle(stack: Stack, load: Load, *, drain_timeout: float = 90) -> Accounting:
    """After a fault: the load finishes, the queue drains, and the invariant holds exactly."""
    load.join()
    stack.wait_drained(timeout=drain_timeout)
    assert stack.dead_letters() == 0, stack.logs()
    ledger = stack.accounting()
    tally = assert_accounting_invariant(load.ok_ids, ledger)
    # Every distinct event was answered "ok" at least once: each is stored exactly once.
    assert len(ledger.events) == load.events, (len(ledger.events), load.events, tally)
    return tally


def wait_stored(stack: Stack, *, at_least: int = 1, timeout: float = 60) -> None:
    wait_until(lambda: stack.stored() >= at_least, timeout=timeout, what="events being stored")


def kill_a_worker_mid_batch(stack: Stack, *, timeout: float = 60) -> None:
    """kill -9 of a worker while messages are out unacked, and a new worker in its place."""
    wait_until(lambda: stack.depth()[1] > 0, timeout=timeout, what="the worker to hold messages")
    stack.kill_worker(stack.workers[0])
    stack.start_worker()


def flush_again_and_again(flush: Callable[[], None], *, seconds: float) -> None:
    """Claims and filters lost again and again while copies are in flight."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        flush()
        time.sleep(0.05)


# --- ClickHouse (shared): stop it by pid, start it with the project's script ------------------


def clickhouse_pid() -> int:
    """The pid of the server listening on the native port (there is one such process)."""
    done = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{CLICKHOUSE_PORT}"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    pids = {int(pid) for pid in re.findall(r"pid=(\d+)", done.stdout)}
    if len(pids) != 1:
        raise AssertionError(f"expected one process on :{CLICKHOUSE_PORT}, found {pids}")
    return pids.pop()


def clickhouse_answers() -> bool:
    done = subprocess.run(
        ["clickhouse-client", "--port", str(CLICKHOUSE_PORT), "-q", "SELECT 1"],
        capture_output=True,
        timeout=10,
        check=False,
    )
    return done.returncode == 0


def stop_clickhouse(pid: int, *, grace: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not gone within `grace` seconds."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=10, what="clickhouse to exit")


def start_clickhouse() -> None:
    """scripts/ensure-clickhouse.sh, then wait until the server answers queries."""
    subprocess.run(
        [str(ROOT / "scripts" / "ensure-clickhouse.sh")], timeout=120, check=True, cwd=ROOT
    )
    wait_until(clickhouse_answers, timeout=60, what="clickhouse to answer")


# --- RabbitMQ (shared): stop_app / start_app ---------------------------------------------------


def rabbitmqctl(*args: str, timeout: float = 120) -> None:
    subprocess.run(["rabbitmqctl", *args], capture_output=True, timeout=timeout, check=True)


def stop_broker() -> None:
    rabbitmqctl("stop_app")


def start_broker() -> None:
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup")


def kill_broker() -> None:
    """SIGKILL RabbitMQ's Erlang VM: a crash, no clean shutdown, nothing flushed on the way."""
    done = subprocess.run(
        ["pgrep", "-u", "rabbitmq", "-f", "beam.smp"], capture_output=True, text=True, check=False
    )
    pids = [int(pid) for pid in done.stdout.split()]
    assert pids, "no RabbitMQ VM is running"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids),
        timeout=20,
        what="RabbitMQ to die",
    )


def restart_killed_broker() -> None:
    """Start RabbitMQ again after a kill, as this machine starts it, and wait until it serves."""
    subprocess.run(["rabbitmq-server", "-detached"], capture_output=True, timeout=60, check=True)

    def started() -> bool:  # the node must exist before await_startup can wait for it
        done = subprocess.run(
            ["rabbitmqctl", "await_startup"], capture_output=True, timeout=120, check=False
        )
        return done.returncode == 0

    wait_until(started, timeout=180, interval=1, what="RabbitMQ to start after its kill")
