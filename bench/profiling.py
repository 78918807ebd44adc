"""Sample the API and the worker with py-spy while wrk runs, and say where the time goes.

py-spy records collapsed stacks (`--format raw`, one "frame;frame;... count" line per distinct
stack, children processes included); the benchmark renders them as an SVG flame graph and
summarises them: own time by function (the leaf frame), own time by package, and the time
spent under each of our own functions (inclusive).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from attrs import define

from bench import flamegraph

OUR_PACKAGES = ("domain/", "application/", "adapters/", "infrastructure/")
_LINE = re.compile(r":\d+\)$")
_PROCESS = re.compile(r'^process (\d+):"(.*)"$')


def ensure_py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(_venv_bin()) / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def _venv_bin() -> str:
    import sys

    return str(Path(sys.executable).parent)


@define
class Recording:
    """One py-spy process recording one role's process tree."""

    role: str
    raw: Path
    svg: Path
    popen: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, role: str, pid: int, out: Path, seconds: int, rate: int = 100) -> Recording:
        raw, svg, log = out.with_suffix(".txt"), out.with_suffix(".svg"), out.with_suffix(".log")
        with log.open("wb") as sink:
            popen = subprocess.Popen(
                [
                    ensure_py_spy(),
                    "record",
                    f"--pid={pid}",
                    "--subprocesses",
                    "--format=raw",
                    f"--output={raw}",
                    f"--duration={seconds}",
                    f"--rate={rate}",
                    # Sample without pausing the target: a little skew, far less overhead.
                    "--nonblocking",
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        return cls(role, raw, svg, popen, log)

    def finish(self, timeout: float = 60) -> dict[str, Any]:
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.terminate()  # py-spy writes what it has on SIGTERM/SIGINT
            self.popen.wait(10)
        if not self.raw.exists():
            return {"role": self.role, "error": self.log.read_text(errors="replace")[-1000:]}
        self.log.unlink(missing_ok=True)
        stacks = read_collapsed(self.raw)
        flamegraph.write_svg(stacks, self.svg, title=f"dedup {self.role} (py-spy, on-CPU)")
        return {"role": self.role, "svg": str(self.svg), "raw": str(self.raw), **summarize(stacks)}


def frame_name(frame: str) -> str:
    """`func (pkg/mod.py:123)` → `func (pkg/mod.py)`; a process frame → `process <pid>`."""
    process = _PROCESS.match(frame)
    if process:
        return f"process {process.group(1)}"
    return _LINE.sub(")", frame)


def read_collapsed(path: Path) -> list[tuple[list[str], int]]:
    stacks: list[tuple[list[str], int]] = []
    for line in path.read_text(errors="replace").splitlines():
        body, _, count = line.rpartition(" ")
        if body and count.isdigit():
            stacks.append(([frame_name(f) for f in body.split(";")], int(count)))
    return stacks


def _file_of(frame: str) -> str:
    return frame[frame.rfind("(") + 1 : -1] if frame.endswith(")") else frame


def _package_of(frame: str) -> str:
    path = _file_of(frame)
    if path.startswith(OUR_PACKAGES):
        return "/".join(path.split("/")[:2]).removesuffix(".py")
    return path.split("/")[0].removesuffix(".py")


def summarize(stacks: list[tuple[list[str], int]], top: int = 15) -> dict[str, Any]:
    """Own time by function and by package, inclusive time of our functions; in % of samples."""
    total = sum(count for _, count in stacks) or 1
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    for frames, count in stacks:
        code = [f for f in frames if not f.startswith("process ")]
        if not code:
            continue
        own[code[-1]] += count
        packages[_package_of(code[-1])] += count
        for frame in set(code):
            if _file_of(frame).startswith(OUR_PACKAGES):
                ours[frame] += count

    def table(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"name": name, "samples": n, "percent": round(100 * n / total, 1)}
            for name, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "own_by_function": table(own),
        "own_by_package": table(packages),
        "inclusive_ours": table(ours),
    }
