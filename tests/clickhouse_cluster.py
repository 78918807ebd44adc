"""A ClickHouse 18.16 cluster of the tests' own: one ZooKeeper, two shards of two replicas.

Everything on loopback, on ports nobody else uses (ZooKeeper 12181, native 19101-19104, HTTP
18201-18204, interserver 19201-19204), with data and logs under /tmp/chcluster-*, wiped when
it starts: the shared server on 9000/8123 is never touched. Debian's `zookeeper` package
(scripts/ensure-cluster.sh) and `clickhouse-server` (scripts/ensure-clickhouse.sh) provide
the binaries; each server gets a config file written here, ZooKeeper is started directly
with its own zoo.cfg rather than through systemd.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from attrs import define, field

from tests.clickhouse_cluster_config import CONFIG_XML, USERS_XML
from tests.e2e.processes import wait_until

CLUSTER = "chcluster"
ROOT = Path("/tmp")
ZOOKEEPER_PORT = 12181
ZOOKEEPER_CLASSPATH = "/usr/share/java/zookeeper.jar:/etc/zookeeper/conf_example"
SHARDS = 2
REPLICAS = 2


def _assert_free(*ports: int) -> None:
    """Fail loudly when a port is taken: a leftover server must never pass for a new one."""
    for port in ports:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                raise AssertionError(f"port {port} is in use: a leftover of an earlier run?")


def _reply(port: int, request: bytes) -> bytes:
    """What a four-letter-word command gets from ZooKeeper; b"" when nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
            return b"".join(chunks)
    except OSError:
        return b""


@define
class ZooKeeper:
    """A standalone ZooKeeper on 127.0.0.1:12181, data in /tmp/chcluster-zk."""

    workdir: Path = ROOT / "chcluster-zk"
    port: int = ZOOKEEPER_PORT
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        _assert_free(self.port)
        shutil.rmtree(self.workdir, ignore_errors=True)
        (self.workdir / "data").mkdir(parents=True)
        config = self.workdir / "zoo.cfg"
        config.write_text(
            "tickTime=2000\n"
            f"dataDir={self.workdir / 'data'}\n"
            f"clientPort={self.port}\n"
            "clientPortAddress=127.0.0.1\n"
            "maxClientCnxns=0\n"
            "admin.enableServer=false\n"
            "4lw.commands.whitelist=srvr\n"
        )
        log = (self.workdir / "zookeeper.log").open("ab")
        self.popen = subprocess.Popen(
            [
                "java",
                "-Xmx256m",
                "-cp",
                ZOOKEEPER_CLASSPATH,
                "org.apache.zookeeper.server.ZooKeeperServerMain",
                str(config),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # `srvr` names the mode only once the server serves sessions ("ruok" says imok
        # earlier, and an 18.16 server that meets a ZooKeeper not serving yet can crash).
        wait_until(self.serving, timeout=60, what="zookeeper serving (srvr)")

    def serving(self) -> bool:
        return b"Mode: standalone" in _reply(self.port, b"srvr")

    def stop(self) -> None:
        _stop(self.popen)


def _stop(popen: subprocess.Popen[bytes] | None, *, kill: bool = False) -> None:
    if popen is None or popen.poll() is not None:
        return
    popen.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        popen.wait(30)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait(10)


@define
class ClickHouseNode:
    """One clickhouse-server of the cluster: replica `replica` of shard `shard` (from 1)."""

    shard: int
    replica: int
    popen: subprocess.Popen[bytes] | None = None

    @property
    def index(self) -> int:
        return (self.shard - 1) * REPLICAS + self.replica

    @property
    def name(self) -> str:
        return f"s{self.shard}r{self.replica}"

    @property
    def tcp_port(self) -> int:
        return 19100 + self.index

    @property
    def http_port(self) -> int:
        return 18200 + self.index

    @property
    def interserver_port(self) -> int:
        return 19200 + self.index

    @property
    def workdir(self) -> Path:
        return ROOT / f"chcluster-ch{self.index}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.tcp_port}"

    def write_config(self, remote_servers: str) -> Path:
        shutil.rmtree(self.workdir, ignore_errors=True)
        for sub in ("data", "tmp", "user_files", "log"):
            (self.workdir / sub).mkdir(parents=True)
        (self.workdir / "users.xml").write_text(USERS_XML)
        config = self.workdir / "config.xml"
        config.write_text(
            CONFIG_XML.format(
                dir=self.workdir,
                tcp_port=self.tcp_port,
                http_port=self.http_port,
                interserver_port=self.interserver_port,
                remote_servers=remote_servers,
                zookeeper_port=ZOOKEEPER_PORT,
                shard=f"{self.shard:02d}",
                replica=self.name,
            )
        )
        return config

    def start(self) -> None:
        """Start the server on the files write_config left (its data kept across a restart)."""
        log = (self.workdir / "log" / "stdout.log").open("ab")
        self.popen = subprocess.Popen(
            ["clickhouse-server", f"--config-file={self.workdir / 'config.xml'}"],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def ready(self) -> bool:
        if self.popen is not None and self.popen.poll() is not None:
            log = self.workdir / "log" / "clickhouse-server.err.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise AssertionError(f"clickhouse-server {self.name} exited: {tail}")
        try:
            url = f"http://127.0.0.1:{self.http_port}/ping"
            with urllib.request.urlopen(url, timeout=1) as answer:
                return bool(answer.read().startswith(b"Ok"))
        except OSError:
            return False

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (a clean shutdown), or with `kill` SIGKILL: a crash."""
        _stop(self.popen, kill=kill)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """An answer from this node alone, over the native protocol."""
        from clickhouse_driver import Client  # type: ignore[import-untyped]

        client = Client(host="127.0.0.1", port=self.tcp_port, connect_timeout=5)
        try:
            return list(client.execute(sql))
        finally:
            client.disconnect()


@define
class ClickHouseCluster:
    """ZooKeeper and SHARDS x REPLICAS clickhouse-servers named in `remote_servers` as CLUSTER."""

    zookeeper: ZooKeeper = field(factory=ZooKeeper)
    nodes: list[ClickHouseNode] = field(
        factory=lambda: [
            ClickHouseNode(shard=s, replica=r)
            for s in range(1, SHARDS + 1)
            for r in range(1, REPLICAS + 1)
        ]
    )
    name: str = CLUSTER
    started_in: float = 0.0  # seconds start() took, for the report

    def remote_servers(self) -> str:
        shards = []
        for shard in range(1, SHARDS + 1):
            replicas = "".join(
                f"<replica><host>127.0.0.1</host><port>{node.tcp_port}</port></replica>"
                for node in self.nodes
                if node.shard == shard
            )
            shards.append(
                f"<shard><internal_replication>true</internal_replication>{replicas}</shard>"
            )
        return f"<{self.name}>{''.join(shards)}</{self.name}>"

    def start(self) -> None:
        began = time.monotonic()
        _assert_free(
            *(p for n in self.nodes for p in (n.tcp_port, n.http_port, n.interserver_port))
        )
        self.zookeeper.start()
        for node in self.nodes:
            node.write_config(self.remote_servers())
            node.start()
        for node in self.nodes:
            wait_until(node.ready, timeout=120, what=f"clickhouse-server {node.name}")
        self.started_in = time.monotonic() - began

    def stop(self) -> None:
        """Stop every process; the data goes, the logs stay for a failure's sake."""
        for node in self.nodes:  # all at once: each may take a while to shut down
            if node.popen is not None and node.popen.poll() is None:
                node.popen.terminate()
        for node in self.nodes:
            node.stop()
        self.zookeeper.stop()
        # Thousands of small part files take minutes to delete on a busy disk: moved aside
        # at once, deleted by an rm of their own that the session does not wait for.
        gone = []
        for data in [
            *(node.workdir / "data" for node in self.nodes),
            self.zookeeper.workdir / "data",
        ]:
            if data.exists():
                gone.append(data.rename(data.with_name(f"data.gone-{uuid.uuid4().hex[:8]}")))
        if gone:
            subprocess.Popen(["rm", "-rf", *map(str, gone)], start_new_session=True)

    def url(self, database: str, *, user: str = "default", password: str = "") -> str:
        """clickhouse://user:pass@every-node/database: the client fails over between them."""
        hosts = ",".join(node.address for node in self.nodes)
        return f"clickhouse://{user}:{password}@{hosts}/{database}"

    def node(self, shard: int, replica: int) -> ClickHouseNode:
        return next(n for n in self.nodes if (n.shard, n.replica) == (shard, replica))
