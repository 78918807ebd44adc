"""Drive the API with wrk and bench/lua/events.lua; parse the JSON line its done() prints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from attrs import frozen

SCRIPT = Path(__file__).resolve().parent / "lua" / "events.lua"
MARKER = "BENCH_JSON "


def ensure_wrk() -> str:
    """The wrk binary; installed from the distribution's packages when missing (Debian)."""
    found = shutil.which("wrk")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
    subprocess.run(
        [*sudo, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq", "wrk"],
        check=True,
    )
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return found


@frozen
class Load:
    """One wrk run's settings."""

    mode: str  # "single" or "batch"
    scenario: str  # tag written into every event; the counts are attributed by it
    duration: int  # seconds
    connections: int
    threads: int
    copies_min: int
    copies_max: int
    batch_size: int = 100
    timeout: int = 5  # seconds before wrk counts a request as timed out

    @property
    def events_per_request(self) -> int:
        return self.batch_size if self.mode == "batch" else 1


@frozen
class WrkResult:
    load: Load
    duration_s: float
    requests: int  # responses received
    issued: int  # requests built by the script (includes those in flight when wrk stopped)
    events_issued: int  # distinct events the script built
    non_2xx: int
    socket_errors: dict[str, int]
    latency_ms: dict[str, float]
    raw: dict[str, Any]

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s

    @property
    def ok_per_s(self) -> float:
        return self.ok / self.duration_s

    @property
    def ok_events(self) -> int:
        return self.ok * self.load.events_per_request

    @property
    def events_per_s(self) -> float:
        """Events answered "ok" per second."""
        return self.ok_events / self.duration_s

    def summary(self) -> dict[str, Any]:
        return {
            "duration_s": round(self.duration_s, 3),
            "requests": self.requests,
            "ok": self.ok,
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
            "issued": self.issued,
            "events_issued": self.events_issued,
            "events_per_request": self.load.events_per_request,
            "requests_per_s": round(self.requests_per_s, 1),
            "ok_per_s": round(self.ok_per_s, 1),
            "ok_events": self.ok_events,
            "events_per_s": round(self.events_per_s, 1),
            "latency_ms": self.latency_ms,
        }


def parse(load: Load, stdout: str) -> WrkResult:
    line = next((ln for ln in stdout.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no {MARKER.strip()} line:\n{stdout[-2000:]}")
    raw = json.loads(line.removeprefix(MARKER))
    latency = raw["latency_us"]
    ms = {f"p{p}": round(v / 1000, 2) for p, v in latency["percentiles"].items()}
    ms |= {k: round(latency[k] / 1000, 2) for k in ("min", "max", "mean", "stdev")}
    errors = raw["errors"]
    return WrkResult(
        load=load,
        duration_s=raw["duration_us"] / 1e6,
        requests=raw["requests"],
        issued=raw["issued"],
        events_issued=raw["events_issued"],
        non_2xx=errors["status"],
        socket_errors={k: errors[k] for k in ("connect", "read", "write", "timeout")},
        latency_ms=ms,
        raw=raw,
    )


def command(base_url: str, load: Load, run_id: str) -> list[str]:
    return [
        ensure_wrk(),
        f"--threads={load.threads}",
        f"--connections={load.connections}",
        f"--duration={load.duration}s",
        f"--timeout={load.timeout}s",
        f"--script={SCRIPT}",
        base_url,
        "--",
        load.mode,
        load.scenario,
        run_id,
        str(load.copies_min),
        str(load.copies_max),
        str(load.batch_size),
    ]


def run(base_url: str, load: Load, run_id: str) -> WrkResult:
    """Run wrk to completion (bounded by its --duration) and parse its report."""
    if not base_url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError("the benchmark only loads a service on this machine")
    done = subprocess.run(
        command(base_url, load, run_id),
        capture_output=True,
        text=True,
        timeout=load.duration + load.timeout + 60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stderr}\n{done.stdout}")
    return parse(load, done.stdout)
