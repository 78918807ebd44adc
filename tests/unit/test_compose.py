"""compose.yaml and .env.example agree with the code (there is no Docker engine to try them on)."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from attrs import fields
from dedup.infrastructure.cli import parser
from dedup.infrastructure.settings import PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
SERVERS = ROOT / "tests" / "servers.py"
ENV_EXAMPLE = ROOT / ".env.example"
SETTING_NAME = re.compile(r"\bDEDUP_[A-Z0-9_]+\b")
APPLICATION = ("api", "worker", "beat")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # resolves the `<<` merges
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def dedup_commands() -> list[tuple[str, list[str]]]:
    """Every `dedup ...` the file runs: service commands and health checks, by service."""
    found = []
    for name, service in services().items():
        candidates = [service.get("command")]
        test = (service.get("healthcheck") or {}).get("test")
        if isinstance(test, list) and test and test[0] in {"CMD", "CMD-SHELL"}:
            candidates.append(test[1:] if test[0] == "CMD" else test[1])
        for command in candidates:
            if command and argv(command)[0] == "dedup":
                found.append((name, argv(command)))
    return found


def subcommands() -> set[str]:
    for action in parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("the dedup parser has no subcommands")


def setting_names() -> set[str]:
    return {PREFIX + attribute.name.upper() for attribute in fields(Settings)}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(key): str(value) for key, value in env.items()}


def test_the_application_services_run_dedup_commands():
    assert {name for name, _ in dedup_commands()} >= {"migrate", *APPLICATION}


@pytest.mark.parametrize(("service", "command"), dedup_commands())
def test_every_dedup_command_in_compose_parses_with_the_cli(service, command):
    assert command[1] in subcommands(), f"{service}: `dedup {command[1]}` is no dedup command"
    try:
        parser().parse_args(command[1:])
    except SystemExit as exc:
        pytest.fail(f"{service}: `{shlex.join(command)}` does not parse (exit {exc.code})")


@pytest.mark.parametrize("path", [COMPOSE, ENV_EXAMPLE], ids=lambda p: p.name)
def test_every_dedup_name_in_the_file_is_a_setting(path):
    unknown = sorted(set(SETTING_NAME.findall(path.read_text())) - setting_names())
    assert unknown == [], f"{path.name} names settings that do not exist: {unknown}"


def test_env_example_lists_every_setting():
    listed = set(SETTING_NAME.findall(ENV_EXAMPLE.read_text()))
    assert sorted(setting_names() - listed) == []


def test_every_service_has_a_health_check():
    for name, service in services().items():
        if service.get("profiles"):
            continue  # a one-shot run on demand (the test suites), not a running service
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"


def test_migrations_run_once_before_the_api_the_worker_and_beat():
    migrate = services()["migrate"]
    assert argv(migrate["command"])[1:3] == ["migrate", "up"]
    assert migrate.get("restart") == "no"
    for name in APPLICATION:
        after = services()[name]["depends_on"]["migrate"]
        assert after["condition"] == "service_completed_successfully", name


def test_the_application_waits_for_healthy_backends():
    backends = {"api": {"redis", "rabbitmq"}, "worker": {"redis", "rabbitmq"}, "beat": {"rabbitmq"}}
    for name, needed in backends.items():
        depends = services()[name]["depends_on"]
        for backend in needed:
            assert depends[backend]["condition"] == "service_healthy", f"{name} -> {backend}"
    assert services()["migrate"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"


def test_the_application_uses_the_compose_backends_and_quorum_queues():
    for name in ("migrate", *APPLICATION):
        env = environment(services()[name])
        assert env["DEDUP_QUEUE_TYPE"] == "quorum", name
        assert env["DEDUP_BROKER_URL"].startswith("amqp://"), name
        assert env["DEDUP_REDIS_URL"].startswith("redis://redis:"), name
        assert env["DEDUP_CLICKHOUSE_URL"].startswith("clickhouse://"), name
        assert "@clickhouse:9000/" in env["DEDUP_CLICKHOUSE_URL"], name


def test_redis_never_evicts_claims_and_persists_them():
    command = argv(services()["redis"]["command"])
    options = dict(zip(command[1::2], command[2::2], strict=False))
    assert options["--maxmemory-policy"] == "noeviction"
    assert options["--appendonly"] == "yes"


def test_the_api_runs_several_processes():
    command = argv(services()["api"]["command"])
    arguments = parser().parse_args(command[1:])
    assert arguments.workers > 1
    assert arguments.host == "0.0.0.0"


def test_clickhouse_is_a_current_release():
    image = services()["clickhouse"]["image"]
    repository, _, tag = image.partition(":")
    assert repository == "clickhouse/clickhouse-server"
    assert int(tag.split(".")[0]) >= 24, image  # the shared schema also runs on 18.16 (tests)


def test_state_lives_in_declared_volumes():
    declared = set(compose().get("volumes") or {})
    for name in ("clickhouse", "redis", "rabbitmq"):
        assert services()[name].get("volumes"), f"{name} keeps its data in the container"
    for name, service in services().items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} uses the undeclared volume {source}"


def dockerfile_stages() -> set[str]:
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE))


def test_the_application_images_leave_the_test_suites_out():
    for name in ("migrate", *APPLICATION):
        assert services()[name]["build"]["target"] == "app", name
    assert {"app", "test"} <= dockerfile_stages()


def test_the_test_profile_runs_the_server_suites_against_the_compose_servers():
    test = services()["test"]
    assert test["profiles"] == ["test"]
    assert test["build"]["target"] == "test"
    for backend in ("clickhouse", "redis", "rabbitmq"):
        assert test["depends_on"][backend]["condition"] == "service_healthy", backend
    env = environment(test)
    read = set(re.findall(r"\b(TEST_[A-Z_]+)\b", SERVERS.read_text()))
    assert set(env) == read, "the test service sets exactly what tests/servers.py reads"
    hosts = {
        "TEST_CLICKHOUSE_URL": "@clickhouse:9000/",
        "TEST_REDIS_URL": "//redis:6379/",
        "TEST_BROKER_URL": "@rabbitmq:5672/",
        "TEST_RABBITMQ_API_URL": "@rabbitmq:15672",
    }
    for name, host in hosts.items():
        assert host in env[name], name
    assert services()["rabbitmq"]["image"].endswith("-management")  # the API the suites ask


def stage_command(stage: str) -> list[str]:
    """The CMD of one Dockerfile stage (exec form), the last one it gives."""
    text = DOCKERFILE.read_text()
    body = re.split(rf"^FROM\s+\S+\s+AS\s+{stage}\s*$", text, flags=re.MULTILINE)[1]
    body = re.split(r"^FROM\s", body, flags=re.MULTILINE)[0]
    commands = re.findall(r"^CMD\s+(\[.*\])\s*$", body, re.MULTILINE)
    assert commands, f"the Dockerfile's {stage} stage gives no CMD in exec form"
    found: list[str] = json.loads(commands[-1])
    return found


def test_the_test_command_is_written_once_in_the_dockerfile():
    assert "command" not in services()["test"], "compose would run another command than CMD"


def test_the_test_profile_leaves_out_only_the_tests_that_stop_this_machines_servers():
    command = stage_command("test")
    assert command[0] == "pytest"
    assert {"tests/integration", "tests/e2e"} <= set(command)
    assert command[command.index("-m") + 1] == "not local_servers"
    registered = (ROOT / "pyproject.toml").read_text()
    assert '"local_servers:' in registered
    stoppers = [
        path.name
        for path in (ROOT / "tests").rglob("test_*.py")
        if "stop_clickhouse(" in path.read_text() or "stop_broker(" in path.read_text()
    ]
    assert stoppers, "the fault tests that stop the servers moved: update this test"
    for name in stoppers:
        text = next((ROOT / "tests").rglob(name)).read_text()
        assert "pytest.mark.local_servers" in text, name
