"""compose.cluster.yaml and deploy/cluster/ agree with the code and with each other.

There is no Docker engine to run them on: this reads the files and checks what each service
is given (DESIGN.md §6.2's settings, the topology of every backend, health checks).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from dedup.infrastructure.cli import parser
from dedup.infrastructure.settings import Settings

from tests.unit.test_compose import SETTING_NAME, argv, environment, setting_names, subcommands

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.cluster.yaml"
DEPLOY = ROOT / "deploy" / "cluster"
APPLICATION = ("migrate", "api", "worker", "beat")
INTERPOLATION = re.compile(r"\$\{([A-Z_]+):\?[^}]*\}")


@cache
def loaded() -> dict[str, Any]:
    """compose.cluster.yaml as compose reads it (PyYAML resolves the `<<` merges)."""
    return dict(yaml.safe_load(COMPOSE.read_text()))


def services() -> dict[str, dict[str, Any]]:
    return dict(loaded()["services"])


def named(prefix: str) -> list[str]:
    """The nodes of one backend: keeper-1, redis-6, clickhouse-s2r1 ..."""
    node = re.compile(rf"{prefix}-(\d+|s\d+r\d+)")
    return sorted(name for name in services() if node.fullmatch(name))


def dedup_env(name: str) -> dict[str, str]:
    """A dedup service's DEDUP_* settings, with ${VAR:?...} filled in as compose would."""
    env = environment(services()[name])
    filled = {
        key: INTERPOLATION.sub(lambda m: f"{m.group(1).lower()}1", v) for key, v in env.items()
    }
    return {key: value for key, value in filled.items() if key.startswith("DEDUP_")}


def mounts(name: str) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts."""
    found = {}
    for volume in services()[name].get("volumes") or []:
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            found[target] = source
    return found


def xml(path: str) -> ET.Element:
    return ET.parse(DEPLOY / path).getroot()


def test_every_dedup_command_parses_and_every_dedup_name_is_a_setting():
    for name in APPLICATION:
        command = argv(services()[name]["command"])
        assert command[0] == "dedup" and command[1] in subcommands(), name
        parser().parse_args(command[1:])
    unknown = sorted(set(SETTING_NAME.findall(COMPOSE.read_text())) - setting_names())
    assert unknown == []


def test_every_service_has_a_health_check_and_every_mounted_file_exists():
    for name, service in services().items():
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
        for target, source in mounts(name).items():
            assert (ROOT / source).is_file(), f"{name} mounts {source} at {target}: missing"


def test_the_broker_is_a_failover_list_of_every_rabbitmq_node_with_quorum_queues():
    nodes = named("rabbitmq")
    assert len(nodes) == 3
    for name in APPLICATION:
        env = dedup_env(name)
        settings = Settings.load(
            {key: env[key] for key in ("DEDUP_BROKER_URL", "DEDUP_QUEUE_TYPE")}, dotenv=None
        )
        assert settings.queue_type == "quorum", name
        hosts = [
            urlsplit(entry).netloc.rpartition("@")[2] for entry in settings.broker_url.split(";")
        ]
        assert hosts == [f"{node}:5672" for node in nodes], name


def test_the_rabbitmq_nodes_form_one_cluster_sharing_a_cookie():
    conf = (DEPLOY / "rabbitmq" / "rabbitmq.conf").read_text()
    listed = re.findall(r"^cluster_formation\.classic_config\.nodes\.\d+ = (\S+)$", conf, re.M)
    nodes = named("rabbitmq")
    assert listed == [f"rabbit@{services()[node]['hostname']}" for node in nodes]
    cookies = {
        environment(services()[node])["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] for node in nodes
    }
    assert len(cookies) == 1 and "-setcookie" in cookies.pop()
    for node in nodes:
        assert mounts(node)["/etc/rabbitmq/conf.d/20-dedup-cluster.conf"].endswith("rabbitmq.conf")


def remote_shards() -> list[list[str]]:
    cluster = xml("clickhouse/remote_servers.xml").find("remote_servers/dedup")
    assert cluster is not None, "no cluster `dedup` in remote_servers.xml"
    return [
        [replica.findtext("host") or "" for replica in shard.findall("replica")]
        for shard in cluster.findall("shard")
    ]


def test_clickhouse_is_two_shards_of_two_replicas_that_the_settings_name():
    shards = remote_shards()
    assert [len(replicas) for replicas in shards] == [2, 2]
    servers = named("clickhouse")
    assert sorted(host for replicas in shards for host in replicas) == servers
    for number, replicas in enumerate(shards, start=1):
        for host in replicas:
            env = environment(services()[host])
            assert (env["CLICKHOUSE_SHARD"], env["CLICKHOUSE_REPLICA"]) == (str(number), host)
            assert set(mounts(host)) >= {
                f"/etc/clickhouse-server/config.d/{file}"
                for file in ("remote_servers.xml", "macros.xml", "keeper.xml")
            }
    for name in APPLICATION:
        env = dedup_env(name)
        assert env["DEDUP_CLICKHOUSE_CLUSTER"] == "dedup", name
        address = urlsplit(env["DEDUP_CLICKHOUSE_URL"])
        assert address.scheme == "clickhouse" and address.path == "/dedup", name
        hosts = address.netloc.rpartition("@")[2].split(",")
        assert sorted(hosts) == [f"{server}:9000" for server in servers], name


def test_the_macros_come_from_each_servers_environment():
    macros = xml("clickhouse/macros.xml").find("macros")
    assert macros is not None
    assert macros.find("shard").get("from_env") == "CLICKHOUSE_SHARD"  # type: ignore[union-attr]
    assert macros.find("replica").get("from_env") == "CLICKHOUSE_REPLICA"  # type: ignore[union-attr]


def test_clickhouse_keeper_is_an_ensemble_of_three_the_servers_know():
    keepers = named("keeper")
    assert len(keepers) == 3
    known = [node.findtext("host") for node in xml("clickhouse/keeper.xml").iter("node")]
    assert known == keepers
    raft = {
        server.findtext("id"): server.findtext("hostname")
        for server in xml("keeper/keeper.xml").iter("server")
    }
    assert raft == {environment(services()[k])["KEEPER_SERVER_ID"]: k for k in keepers}


def test_redis_is_a_cluster_of_three_masters_with_a_replica_each():
    nodes = named("redis")
    assert len(nodes) == 6
    conf = (DEPLOY / "redis" / "redis.conf").read_text()
    assert re.search(r"^cluster-enabled yes$", conf, re.M)
    assert re.search(r"^maxmemory-policy noeviction$", conf, re.M)
    script = (DEPLOY / "redis" / "create-cluster.sh").read_text()
    assert re.search(r"^nodes=\"" + " ".join(nodes) + '"$', script, re.M)
    assert "--cluster-replicas 1" in script
    for name in APPLICATION:
        address = urlsplit(dedup_env(name)["DEDUP_REDIS_URL"])
        assert address.scheme == "redis+cluster", name
        assert set(address.netloc.split(",")) <= {f"{node}:6379" for node in nodes}, name


@pytest.mark.parametrize("name", ["api", "worker"])
def test_the_api_and_the_workers_run_as_several_replicas_once_the_backends_are_up(name):
    service = services()[name]
    assert service["deploy"]["replicas"] > 1
    depends = service["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["redis-cluster"]["condition"] == "service_completed_successfully"
    for node in named("rabbitmq"):
        assert depends[node]["condition"] == "service_healthy", node


def test_one_beat_and_a_proxy_in_front_of_every_api_replica():
    assert "replicas" not in (services()["beat"].get("deploy") or {})
    config = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    assert re.search(r"^\s+server-template api \d+ api:8000 check", config, re.M)
    assert re.search(r"^\s+option httpchk GET /health/ready$", config, re.M)
    assert services()["proxy"]["ports"] == ["8000:8000"]


def test_state_lives_in_declared_volumes():
    declared = set(loaded().get("volumes") or {})
    for name, service in services().items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if not source.startswith("./"):
                assert source in declared, f"{name} uses the undeclared volume {source}"
    for name in [*named("clickhouse"), *named("keeper"), *named("redis"), *named("rabbitmq")]:
        assert any(not v.startswith("./") for v in services()[name]["volumes"]), name
