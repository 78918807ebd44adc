"""What the Redis adapters share: a pipeline or a ping, with driver errors as backend errors."""

from __future__ import annotations

from typing import Any

import redis
from dedup.domain.errors import BackendUnavailableError


def execute(pipe: redis.client.Pipeline[Any], *, wrong_type_ok: bool = False) -> list[Any]:
    """Send the pipeline in one round trip; its replies in order.

    With wrong_type_ok, a command that met a key of another type answers None (unknown)
    instead of failing the pipeline; any other error reply still does (OOM, READONLY...).
    """
    try:
        with pipe:
            replies = pipe.execute(raise_on_error=not wrong_type_ok)
    except redis.RedisError as exc:
        raise BackendUnavailableError("redis", str(exc)) from exc
    for reply in replies:
        if isinstance(reply, redis.RedisError) and not _wrong_type(reply):
            raise BackendUnavailableError("redis", str(reply)) from reply
    return [None if isinstance(reply, redis.RedisError) else reply for reply in replies]


def _wrong_type(error: redis.RedisError) -> bool:
    return isinstance(error, redis.ResponseError) and str(error).startswith("WRONGTYPE")


def ping(client: redis.Redis[Any]) -> None:
    """Raise BackendUnavailableError unless Redis answers."""
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BackendUnavailableError("redis", str(exc)) from exc
