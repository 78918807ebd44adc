"""A three-node RabbitMQ cluster of our own on loopback, for the broker-failover tests.

Nodes dedup1..3@localhost listen on 5681-5683 (distribution on 25681-25683) with their data
under /tmp/broker-N, a cookie and config of their own and no plugins: nothing of the shared
node (rabbit@localhost on 5672, /etc/rabbitmq) is read or touched. They run as root, so a
`pgrep -u rabbitmq` of the shared node's fault test never finds them; they are stopped by pid.

The first node starts alone; the others find it through their config (classic peer
discovery) and join it as they boot. Readiness is polled on the AMQP port: each rabbitmqctl
call boots an Erlang VM of its own, seconds on a busy machine, so the CLI is asked only what
only it can tell (cluster membership, unacked counts).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from attrs import define, field

SBIN = Path("/usr/lib/rabbitmq/bin")  # the real scripts: /usr/sbin's wrappers su to rabbitmq
BASE_PORT = 5680
DIST_PORT = 25680
ROOT = Path("/tmp")
COOKIE = "DEDUPBROKERTESTCLUSTER"
USER = "guest:guest"  # guest may connect over loopback, which is all these nodes listen on


@define
class RabbitNode:
    """One node: its name, AMQP port and files."""

    index: int
    root: Path
    home: Path

    @property
    def name(self) -> str:
        return f"dedup{self.index}@localhost"

    @property
    def port(self) -> int:
        return BASE_PORT + self.index

    @property
    def url(self) -> str:
        return f"amqp://{USER}@127.0.0.1:{self.port}//"

    @property
    def pid_file(self) -> Path:
        return self.root / "pid"

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),  # where the server and the CLI find the cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(DIST_PORT + self.index),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.root / "advanced.config"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def prepare(self, *, peers: list[str]) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        (self.root / "log").mkdir(parents=True)
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq-env.conf").write_text("")
        discovery = "".join(
            f"cluster_formation.classic_config.nodes.{n} = {peer}\n"
            for n, peer in enumerate(peers, start=1)
        )
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            # The machine is shared: no alarm because others use the memory or the disk.
            "vm_memory_high_watermark.absolute = 1GB\n"
            "disk_free_limit.absolute = 50MB\n"
            "cluster_formation.peer_discovery_backend = classic_config\n"
            "cluster_formation.randomized_startup_delay_range.min = 0\n"
            "cluster_formation.randomized_startup_delay_range.max = 1\n" + discovery
        )

    def start(self) -> None:
        subprocess.run(
            [str(SBIN / "rabbitmq-server"), "-detached"],
            env=self.env(),
            capture_output=True,
            timeout=60,
            check=True,
        )

    def ctl(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        done = subprocess.run(
            [str(SBIN / "rabbitmqctl"), "-n", self.name, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl -n {self.name} {' '.join(args)}: {done.stderr}")
        return done.stdout

    def wait_serving(self, timeout: float = 180) -> None:
        """Wait until the node takes AMQP connections (its listener opens last in its boot)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not start: {self.root / 'log'}") from None
                time.sleep(0.2)

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def kill(self) -> None:
        """SIGKILL the node's VM: a crash, nothing flushed or handed over on the way."""
        pid = self.pid()
        if pid is None or not Path(f"/proc/{pid}").exists():
            return
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self, grace: float = 60) -> None:
        """SIGTERM (RabbitMQ shuts down cleanly on it), SIGKILL after `grace` seconds."""
        pid = self.pid()
        if pid is None or not Path(f"/proc/{pid}").exists():
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.kill()


@define
class RabbitCluster:
    """Three clustered nodes; `url` is the failover list DEDUP_BROKER_URL takes."""

    size: int = 3
    home: Path = ROOT / "broker-home"
    nodes: list[RabbitNode] = field(factory=list)
    started_seconds: float = 0.0

    def __attrs_post_init__(self) -> None:
        self.nodes = [
            RabbitNode(i, root=ROOT / f"broker-{i}", home=self.home)
            for i in range(1, self.size + 1)
        ]

    @property
    def url(self) -> str:
        return ";".join(node.url for node in self.nodes)

    def start(self) -> RabbitCluster:
        began = time.monotonic()
        self.stop()  # a previous run killed before its teardown
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        cookie.unlink(missing_ok=True)
        cookie.write_text(COOKIE)
        cookie.chmod(0o400)
        try:
            self._form()
        except BaseException:
            self.stop()  # no node outlives a failed start
            raise
        self.started_seconds = time.monotonic() - began
        return self

    def _form(self) -> None:
        first, *others = self.nodes
        for node in self.nodes:
            node.prepare(peers=[first.name])
        first.start()
        first.wait_serving()
        for node in others:  # they join the first as they boot
            node.start()
        for node in others:
            node.wait_serving()
        running = self.running()
        if running != sorted(node.name for node in self.nodes):
            raise RuntimeError(f"the test cluster formed as {running}")

    def running(self) -> list[str]:
        """The nodes the cluster reports running, asked of any node that answers."""
        for node in self.nodes:
            out = node.ctl("eval", "rabbit_nodes:all_running().", timeout=180, check=False)
            if out.strip().startswith("["):
                return sorted(part.strip(" []'\n") for part in out.split(","))
        return []

    def live_node(self) -> RabbitNode:
        for node in self.nodes:
            pid = node.pid()
            if pid is not None and Path(f"/proc/{pid}").exists():
                return node
        raise RuntimeError("no node of the test cluster is running")

    def counts(self, queue: str) -> tuple[int, int] | None:
        """(ready, unacked) of a queue, asked of a running node; None if it is not listed."""
        out = self.live_node().ctl(
            "list_queues", "-q", "--no-table-headers", "name", "messages_ready",
            "messages_unacknowledged", timeout=180,
        )  # fmt: skip
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == queue:
                return int(parts[1]), int(parts[2])
        return None

    def stop(self) -> None:
        for node in reversed(self.nodes):
            if node.pid() is not None:
                node.stop()
