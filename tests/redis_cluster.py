"""A Redis Cluster of the test run's own: three masters and a replica each, on loopback.

Started once per test run (the `redis_cluster` session fixture) on ports 17101-17106 (their
cluster bus on +10000), with no persistence, and stopped after. A master killed here is
replaced by its replica after CLUSTER_NODE_TIMEOUT_MS, as in production.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from attrs import define, field

from tests.e2e.processes import wait_until

PORTS = tuple(range(17101, 17107))
CLUSTER_NODE_TIMEOUT_MS = 2000


def cli(port: int, *command: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-p", str(port), *command],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout.strip()


@define
class RedisClusterServers:
    """Six redis-server processes, one cluster; `url` is what DEDUP_REDIS_URL takes."""

    workdir: Path = field(factory=lambda: Path(tempfile.mkdtemp(prefix="rcluster-")))
    popens: dict[int, subprocess.Popen[bytes]] = field(factory=dict)

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{PORTS[0]},127.0.0.1:{PORTS[1]}/"

    def start(self) -> None:
        for port in PORTS:
            self.start_node(port)
        nodes = [f"127.0.0.1:{port}" for port in PORTS]
        create = ["--cluster", "create", *nodes, "--cluster-replicas", "1", "--cluster-yes"]
        subprocess.run(
            ["redis-cli", *create],
            capture_output=True,
            timeout=60,
            check=True,
        )
        self.wait_healthy()

    def start_node(self, port: int) -> None:
        """Start (or restart, keeping its nodes.conf, so it rejoins) the node on `port`."""
        home = self.workdir / str(port)
        home.mkdir(exist_ok=True)
        log = (home / "redis.log").open("ab")
        cluster = ["--cluster-enabled", "yes", "--cluster-config-file", str(home / "nodes.conf")]
        cluster += ["--cluster-node-timeout", str(CLUSTER_NODE_TIMEOUT_MS)]
        cluster += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.popens[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", *cluster],
            cwd=home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(lambda: cli(port, "PING") == "PONG", timeout=10, what=f"redis {port}")

    def kill_node(self, port: int) -> None:
        """SIGKILL one node: a crash (its replica, if it was a master, takes over)."""
        popen = self.popens.pop(port)
        popen.kill()
        popen.wait(10)

    def stop(self) -> None:
        for port in list(self.popens):
            self.kill_node(port)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def masters(self) -> list[int]:
        """The ports of the masters now serving slots (as the live nodes see it)."""
        lines = cli(self._any_live(), "CLUSTER", "NODES").splitlines()
        found = []
        for line in lines:
            parts = line.split()
            if "master" in parts[2] and "fail" not in parts[2] and len(parts) > 8:
                found.append(int(parts[1].split("@")[0].rsplit(":", 1)[1]))
        return sorted(found)

    def replica_of(self, master: int) -> int:
        for port in self.popens:
            info = cli(port, "INFO", "replication")
            if "role:slave" in info and f"master_port:{master}" in info.split():
                return port
        raise AssertionError(f"no replica of {master}")

    def wait_healthy(self, timeout: float = 60) -> None:
        """Until every live node says the cluster is ok and three masters serve slots."""

        def healthy() -> bool:
            states = [cli(port, "CLUSTER", "INFO") for port in self.popens]
            return all("cluster_state:ok" in state for state in states) and len(self.masters()) == 3

        wait_until(healthy, timeout=timeout, interval=0.2, what="the redis cluster to be ok")

    def flushall(self) -> None:
        """Empty every master (their replicas follow); this cluster is the test run's own."""
        for port in self.masters():
            cli(port, "FLUSHALL")

    def keys_per_master(self, pattern: str = "*") -> dict[int, int]:
        """How many keys matching `pattern` each master holds."""
        return {port: len(self.scan(port, pattern)) for port in self.masters()}

    def scan(self, port: int, pattern: str) -> list[str]:
        return cli(port, "--scan", "--pattern", pattern).split()

    def filters_complete(self, prefix: str = "dedup:") -> bool:
        """Whether every shard of the stored filters in use can answer (state COMPLETE)."""
        states = [
            cli(port, "BITFIELD", name, "GET", "i32", "#0")
            for port in self.masters()
            for name in self.scan(port, f"{prefix}stored:*")
            if name.endswith("}")
        ]
        return len(states) >= 2 * 64 and all(state == "2" for state in states)

    def _any_live(self) -> int:
        for port in self.popens:
            if cli(port, "PING") == "PONG":
                return port
        raise AssertionError("no node of the redis cluster answers")


def started() -> RedisClusterServers:
    """A new cluster, up and healthy; the set-up cost is printed (it is part of the report)."""
    began = time.monotonic()
    servers = RedisClusterServers()
    try:
        servers.start()
    except BaseException:
        servers.stop()
        raise
    print(f"\nredis cluster (3 masters + 3 replicas) up in {time.monotonic() - began:.1f} s")
    return servers
