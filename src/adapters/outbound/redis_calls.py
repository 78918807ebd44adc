"""What the Redis adapters share: a pipeline or a ping, with driver errors as backend errors.

On a Redis Cluster, redis-py's cluster pipeline splits a batch per node (one round trip to
each) by the slot of each command's keys; every script here touches one slot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias, cast

import redis
from dedup.adapters.outbound.redis_client import DRIVER_ERRORS, RedisClient, RedisConnection
from dedup.domain.errors import BackendUnavailableError
from redis.cluster import ClusterPipeline
from redis.commands.core import Script

RedisPipeline: TypeAlias = "redis.client.Pipeline[Any] | ClusterPipeline[Any]"


def queue_script(
    pipe: RedisPipeline, script: Script, keys: Sequence[str], args: Sequence[Any]
) -> None:
    """Queue one call of `script` on a pipeline of either kind."""
    if isinstance(pipe, ClusterPipeline):
        # redis-py 8.1 refuses pipe.evalsha on a cluster pipeline (redis/redis-py#2914, lifted
        # by #4206, not released yet), and left to find the node itself it asks a server
        # COMMAND GETKEYS for each EVALSHA, a round trip per call: so the call names the node
        # of its keys' slot (a redirection is then followed as for any command). The script
        # must be loaded on that node: pipelined() sees to it.
        cluster = cast(Any, pipe)  # types-redis 4.6 declares neither sha nor this signature
        node = cluster.get_node_from_key(keys[0])
        sha = cast(Any, script).sha
        cluster.execute_command("EVALSHA", sha, len(keys), *keys, *args, target_nodes=node)
    else:
        script(keys, args, pipe)  # the pipeline loads it first if the server lacks it


def pipelined(
    connection: RedisConnection,
    fill: Callable[[RedisPipeline], None],
    *,
    scripts: Sequence[Script] = (),
    wrong_type_ok: bool = False,
) -> list[Any]:
    """Send what `fill` queues in one round trip per node; its replies in order.

    A cluster node that restarted or was just promoted may lack the scripts (Redis does
    not replicate its script cache): they are loaded on every primary and the batch sent
    again, which every batch here allows (each command is idempotent).
    """
    client = connection.client()
    replies = _send(client, fill, wrong_type_ok=wrong_type_ok)
    if scripts and any(isinstance(reply, redis.exceptions.NoScriptError) for reply in replies):
        try:
            for script in scripts:  # on a cluster, SCRIPT LOAD goes to every primary
                cast(Any, client).script_load(cast(Any, script).script)
        except DRIVER_ERRORS as exc:
            raise BackendUnavailableError("redis", str(exc)) from exc
        replies = _send(client, fill, wrong_type_ok=wrong_type_ok)
    return _checked(replies, wrong_type_ok=wrong_type_ok)


def _send(
    client: RedisClient, fill: Callable[[RedisPipeline], None], *, wrong_type_ok: bool
) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    fill(pipe)
    try:
        with pipe:
            # A cluster pipeline answers an error in place only when told not to raise.
            raise_now = not wrong_type_ok and not isinstance(pipe, ClusterPipeline)
            return list(pipe.execute(raise_on_error=raise_now))
    except DRIVER_ERRORS as exc:
        raise BackendUnavailableError("redis", str(exc)) from exc


def _checked(replies: list[Any], *, wrong_type_ok: bool) -> list[Any]:
    """With wrong_type_ok, a WRONGTYPE reply is None (unknown); any other error fails the call."""
    for reply in replies:
        if isinstance(reply, redis.RedisError) and not (wrong_type_ok and _wrong_type(reply)):
            raise BackendUnavailableError("redis", str(reply)) from reply
    return [None if isinstance(reply, redis.RedisError) else reply for reply in replies]


def _wrong_type(error: redis.RedisError) -> bool:
    return isinstance(error, redis.ResponseError) and str(error).startswith("WRONGTYPE")


def ping(connection: RedisConnection) -> None:
    """Raise BackendUnavailableError unless Redis answers (on a cluster, every node)."""
    try:
        connection.client().ping()
    except DRIVER_ERRORS as exc:
        raise BackendUnavailableError("redis", str(exc)) from exc
