"""A redis-server of a test's own on a free port, so a test may stop, pause or flush it."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from attrs import define

from tests.waiting import wait_until


@define
class RedisServer:
    """A redis-server of the test's own: no persistence, so a restart comes back empty."""

    port: int
    workdir: Path
    popen: subprocess.Popen[bytes] | None = None
    # With an append-only file a restart keeps the data, as a production server does.
    appendonly: bool = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        self.popen = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--daemonize",
                "no",
            ],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(lambda: self.cli("PING") == "PONG", timeout=10, what="redis-server")

    def stop(self) -> None:
        """SIGKILL: a crash, not a clean shutdown (nothing is saved either way)."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the server keeps its data and its run_id, but answers nobody (timeouts)."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGCONT)

    def restart(self, *, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def flushall(self) -> None:
        """Empty this test's own Redis (never the shared one)."""
        assert self.cli("FLUSHALL") == "OK"

    def keys(self) -> int:
        return int(self.cli("DBSIZE") or 0)

    def filters_complete(self) -> bool:
        """Whether the stored filters in use (this generation's and the next) can answer."""
        names = self.cli("--scan", "--pattern", "dedup:stored:*").split()
        filters = [name for name in names if name.endswith("}")]
        states = [self.cli("BITFIELD", name, "GET", "i32", "#0") for name in filters]
        return len(filters) >= 2 and all(state == "2" for state in states)

    def cli(self, *command: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), *command],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return done.stdout.strip()
