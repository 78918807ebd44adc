"""Connection URLs: clickhouse://user:password@host:port[,host:port...]/database, chdb://path.

Several hosts fail over: the client connects to the first that answers, in the order given
(clickhouse-driver's alt_hosts), and to the next when that one goes away.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from attrs import frozen
from dedup.adapters.outbound.clickhouse.chdb_executor import ChdbExecutor
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.server_executor import ServerExecutor

DEFAULT_DATABASE = "dedup"

# On a cluster (DEDUP_CLICKHOUSE_CLUSTER), every statement of the writer's connection runs with
# these (all exist on 18.16). An INSERT into a Distributed table returns only once each shard
# has its rows (insert_distributed_sync). Writes and reads of a shard through the Distributed
# tables go to the same replica: the first one alive in the cluster's <remote_servers> order
# (in_order), never the server the client happens to be connected to
# (prefer_localhost_replica=0), and never skipped for replication delay. A replica back from
# an outage is first again while it still fetches, so the lookups that decide exactly-once do
# not rely on this: they read every replica (replicas.py). A quorum (insert_quorum) would
# also survive losing the replica that took a write before it replicated, but 18.16 refuses
# a quorum INSERT while another is in flight on the shard (code 286: every concurrent worker
# batch would fail); see docs/operations.md.
CLUSTER_SETTINGS: dict[str, int | str] = {
    "insert_distributed_sync": 1,
    "load_balancing": "in_order",
    "prefer_localhost_replica": 0,
    "max_replica_delay_for_distributed_queries": 0,
}


@frozen
class ServerUrl:
    host: str
    port: int
    user: str
    password: str
    database: str
    alt_hosts: tuple[tuple[str, int], ...] = ()  # the other hosts, tried in order

    @property
    def alt_hosts_spec(self) -> str:
        """The other hosts as clickhouse-driver's `alt_hosts` ("h2:9000,h3:9000")."""
        return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.alt_hosts)


def _host(text: str, url: str) -> tuple[str, int]:
    """`host`, `host:port` or `[v6]:port` of a URL's host list."""
    parts = urlsplit(f"//{text}")
    try:
        port = parts.port or 9000
    except ValueError as exc:
        raise ValueError(f"bad port in {text!r} of {url!r}") from exc
    return parts.hostname or "127.0.0.1", port


@frozen
class ChdbUrl:
    path: str
    database: str


def parse_server_url(url: str) -> ServerUrl:
    parts = urlsplit(url)
    if parts.scheme != "clickhouse":
        raise ValueError(f"not a clickhouse:// URL: {url!r}")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    hosts = [_host(text, url) for text in hostlist.split(",") if text] or [("127.0.0.1", 9000)]
    (host, port), *alt_hosts = hosts
    return ServerUrl(
        host=host,
        port=port,
        user=unquote(user or "default"),
        password=unquote(password),
        database=unquote(parts.path.lstrip("/")) or DEFAULT_DATABASE,
        alt_hosts=tuple(alt_hosts),
    )


def parse_chdb_url(url: str) -> ChdbUrl:
    """`chdb:///abs/path` is absolute, `chdb://rel/path` relative to the working directory."""
    if not url.startswith("chdb://"):
        raise ValueError(f"not a chdb:// URL: {url!r}")
    path, _, query = url.removeprefix("chdb://").partition("?")
    if not path:
        raise ValueError(f"a chdb URL needs a path: {url!r}")
    database = parse_qs(query).get("database", [DEFAULT_DATABASE])[0]
    return ChdbUrl(path=unquote(path), database=database)


def _server_executor(server: ServerUrl, **options: Any) -> ServerExecutor:
    return ServerExecutor(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        alt_hosts=server.alt_hosts_spec,
        **options,
    )


def server_executor_from_url(
    url: str, *, database: str = "default", cluster: str | None = None
) -> ServerExecutor:
    """A server connection; on a cluster, with the settings that keep a shard consistent."""
    settings = CLUSTER_SETTINGS if cluster else {}
    return _server_executor(parse_server_url(url), database=database, settings=settings)


def chdb_executor_from_url(url: str, *, database: str = "default") -> ChdbExecutor:
    return ChdbExecutor(path=parse_chdb_url(url).path, database=database)


def executor_from_url(
    url: str, *, database: str = "default", cluster: str | None = None
) -> Executor:
    """The executor the URL's scheme names; a name a statement leaves unqualified is `database`'s.

    The writer stays in "default", which exists before any migration made the URL's database.
    """
    if url.startswith("chdb://"):
        return chdb_executor_from_url(url, database=database)  # one process: never a cluster
    return server_executor_from_url(url, database=database, cluster=cluster)


def database_from_url(url: str) -> str:
    if url.startswith("chdb://"):
        return parse_chdb_url(url).database
    return parse_server_url(url).database
