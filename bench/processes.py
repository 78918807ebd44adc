"""Start real `dedup` processes, wait until they serve, and stop them cleanly.

The benchmark drives the service through these, and so do the end-to-end tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
from attrs import define

DEDUP = str(Path(sys.executable).with_name("dedup"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment(**extra: str) -> dict[str, str]:
    """The caller's environment without any DEDUP_* setting, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEDUP_")}
    env.update(extra)
    return env


def dedup(*args: str, env: Mapping[str, str], cwd: Path, timeout: float = 120) -> str:
    """Run a short `dedup` command to completion; fail with its output if it fails."""
    done = subprocess.run(
        [DEDUP, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"dedup {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@define
class Process:
    """A long-running `dedup` command with its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(
        cls, *args: str, env: Mapping[str, str], cwd: Path, program: str | Path = DEDUP
    ) -> Process:
        """`dedup ARGS...` (or another `program`), named after its command (`serve`, `worker`)."""
        return cls.run(args[0], [str(program), *args], env=env, cwd=cwd)

    @classmethod
    def run(
        cls, name: str, command: Sequence[str], *, env: Mapping[str, str], cwd: Path
    ) -> Process:
        """Any command, in a process group of its own: stop() ends its children too."""
        log = cwd / f"{name}-{time.monotonic_ns()}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                list(command),
                env=dict(env),
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(name=name, popen=popen, log=log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, wait, then SIGKILL; 0 for a clean stop (uvicorn re-raises SIGTERM when done)."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        code = int(self.popen.returncode)
        return 0 if code == -signal.SIGTERM else code

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)


def wait_ready(base_url: str, *processes: Process, timeout: float = 60) -> None:
    """Poll /health/ready until it answers 200; fail early if a process died."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        for proc in processes:
            if proc.popen.poll() is not None:
                raise AssertionError(f"{proc.name} exited early:\n{proc.output()}")
        try:
            response = httpx.get(f"{base_url}/health/ready", timeout=2)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    logs = "\n".join(p.output() for p in processes)
    raise AssertionError(f"not ready after {timeout}s: {last}\n{logs}")
