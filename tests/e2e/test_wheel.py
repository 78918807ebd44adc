"""The wheel, installed as a user installs it: one package, every migration, a working serve."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from attrs import frozen
from bench.processes import Process, clean_environment, free_port, wait_ready

pytestmark = pytest.mark.e2e

CHECKOUT = Path(__file__).resolve().parents[2]
# What a build reads; a copy of just these keeps a stale build/ or .venv out of the wheel.
SOURCES = ("pyproject.toml", "README.md", "src", "migrations")
MIGRATIONS = sorted(p.name for p in (CHECKOUT / "migrations").glob("*.sql"))
MODULES = sorted(p.relative_to(CHECKOUT / "src").as_posix() for p in CHECKOUT.glob("src/**/*.py"))


@frozen
class Installed:
    wheel: Path
    bin: Path

    def dedup(self, *args: str, cwd: Path) -> str:
        done = subprocess.run(
            [str(self.bin / "dedup"), *args],
            env=clean_environment(),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"dedup {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout


def _run(*command: str | Path, cwd: Path) -> None:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the wheel from a copy of the sources; pip-install it into a venv of its own."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        path = CHECKOUT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "-w",
        root / "dist",
        source,
        cwd=root,
    )
    [wheel] = (root / "dist").glob("dedup-*.whl")
    venv = root / "venv"
    # Outside the checkout, from the base interpreter: nothing of the dev install leaks in.
    base = Path(getattr(sys, "_base_executable", sys.executable))
    _run(base, "-m", "venv", venv, cwd=root)
    _run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=root)
    yield Installed(wheel=wheel, bin=venv / "bin")


def test_the_wheel_holds_one_top_level_package_with_every_module_and_migration(
    installed: Installed,
) -> None:
    with zipfile.ZipFile(installed.wheel) as archive:
        names = [n for n in archive.namelist() if ".dist-info/" not in n]
    assert {name.split("/")[0] for name in names} == {"dedup"}
    assert sorted(n.removeprefix("dedup/migrations/") for n in names if n.endswith(".sql")) == (
        MIGRATIONS
    )
    shipped = {n.removeprefix("dedup/") for n in names if n.endswith(".py")}
    assert set(MODULES) <= shipped, sorted(set(MODULES) - shipped)


def test_the_installed_dedup_lists_every_migration_and_stores_a_posted_event(
    installed: Installed, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    status = installed.dedup("migrate", "status", cwd=empty)
    assert [line.split()[1] for line in status.splitlines()] == [
        name.removesuffix(".sql").split("_", 1)[1] for name in MIGRATIONS
    ]
    assert all(line.endswith("pending") for line in status.splitlines()), status

    port = free_port()
    serve = Process.start(
        "serve",
        "--port",
        str(port),
        env=clean_environment(),
        cwd=empty,
        program=installed.bin / "dedup",
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", serve)
        body = {"event": "installed", "run": uuid.uuid4().hex}
        response = httpx.post(f"http://127.0.0.1:{port}/service-event/", json=body, timeout=30)
        assert response.status_code == 200, response.text
        event_id = response.json()["event_id"]
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=30)  # package data, not a module
        assert page.status_code == 200 and "/admin/overview" in page.text, page.text
    finally:
        assert serve.stop() == 0, serve.output()

    status = installed.dedup("migrate", "status", cwd=empty)
    assert all(line.endswith(" applied") for line in status.splitlines()), status
    stored = _stored_payloads(installed, empty / "var" / "chdb")
    assert stored == {event_id: json.dumps(body, sort_keys=True, separators=(",", ":"))}


def _stored_payloads(installed: Installed, store: Path) -> dict[str, str]:
    """{event_id: payload} read from the store by the installed package itself."""
    script = (
        "import json, sys\n"
        "from dedup.adapters.outbound.clickhouse import ChdbExecutor, ClickHouseInspector\n"
        "executor = ChdbExecutor(sys.argv[1])\n"
        "events = ClickHouseInspector(executor=executor, database='dedup').events()\n"
        "print(json.dumps({str(e.event_id): e.payload for e in events}))\n"
        "executor.close()\n"
    )
    done = subprocess.run(
        [str(installed.bin / "python"), "-c", script, str(store)],
        env=clean_environment(),
        cwd=store.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    stored: dict[str, str] = json.loads(done.stdout)
    return stored
