"""The Redis client of one adapter: one server (`redis://`) or a Redis Cluster.

`redis+cluster://[user:password@]host1:port1,host2:port2/` names a few nodes of a cluster;
redis-py's RedisCluster learns the rest, and the slot of every key, from them. A cluster has
database 0 only. `rediss+cluster://` speaks TLS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeAlias, cast
from urllib.parse import unquote, urlsplit

import redis
from dedup.domain.errors import BackendUnavailableError
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import Script
from redis.exceptions import RedisClusterException

RedisClient: TypeAlias = "redis.Redis[Any] | RedisCluster[Any]"

CLUSTER_SCHEMES = frozenset({"redis+cluster", "rediss+cluster"})
# What the driver raises when Redis cannot answer: RedisClusterException (no slot map, no
# reachable node) is no RedisError.
DRIVER_ERRORS = (redis.RedisError, RedisClusterException)


def cluster_nodes(url: str) -> list[tuple[str, int]]:
    """The (host, port) of each node a `redis+cluster://` URL names; ValueError if malformed."""
    parts = urlsplit(url)
    if parts.scheme not in CLUSTER_SCHEMES:
        raise ValueError(f"expected a redis+cluster:// URL, got {url!r}")
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError(f"a Redis Cluster has database 0 only, got {parts.path!r} in {url!r}")
    hosts = parts.netloc.rpartition("@")[2]
    nodes = []
    for part in hosts.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port for each cluster node, got {part!r} in {url!r}")
        nodes.append((host.strip("[]"), int(port)))
    return nodes


def _credentials(url: str) -> dict[str, Any]:
    userinfo, at, _ = urlsplit(url).netloc.rpartition("@")
    if not at:
        return {}
    user, colon, password = userinfo.partition(":")
    found = {"username": unquote(user)} if user else {}
    return found | ({"password": unquote(password)} if colon else {})


class RedisConnection:
    """A client built on first use, so a process starts while Redis is away.

    RedisCluster asks a node for the slot map while it is built; the single-server client
    connects on its first command anyway. Scripts are registered once the client exists.
    """

    def __init__(self, build: Callable[[], RedisClient]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._client: RedisClient | None = None
        self._scripts: dict[str, Script] = {}

    @classmethod
    def of(cls, client: RedisClient) -> RedisConnection:
        return cls(lambda: client)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisConnection:
        """One server or a cluster, by the URL's scheme; `options` go to every connection."""
        if urlsplit(url).scheme not in CLUSTER_SCHEMES:
            return cls.of(redis.Redis.from_url(url, **options))
        nodes = [ClusterNode(host, port) for host, port in cluster_nodes(url)]
        tls = urlsplit(url).scheme.startswith("rediss")
        return cls(
            lambda: RedisCluster(startup_nodes=nodes, ssl=tls, **_credentials(url), **options)
        )

    @property
    def cluster(self) -> bool:
        return isinstance(self.client(), RedisCluster)

    def client(self) -> RedisClient:
        """The client, built now if it is not yet; BackendUnavailableError if it cannot be."""
        if self._client is not None:  # the batch path: no lock once built
            return self._client
        with self._lock:
            if self._client is None:
                try:
                    self._client = self._build()
                except DRIVER_ERRORS as exc:
                    raise BackendUnavailableError("redis", str(exc)) from exc
            return self._client

    def script(self, text: str) -> Script:
        """The script registered on this client (its sha computed once)."""
        found = self._scripts.get(text)
        if found is not None:
            return found
        client = self.client()
        with self._lock:
            if text not in self._scripts:
                # types-redis 4.6 lacks RedisCluster's scripting commands; redis-py has them.
                self._scripts[text] = cast(Any, client).register_script(text)
            return self._scripts[text]

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
