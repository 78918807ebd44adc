"""What the Redis adapters share: a pipeline or a ping, with driver errors as backend errors."""

from __future__ import annotations

from typing import Any

import redis
from dedup.domain.errors import BackendUnavailableError


def execute(pipe: redis.client.Pipeline[Any]) -> list[Any]:
    """Send the pipeline in one round trip; its replies in order."""
    try:
        with pipe:
            return pipe.execute()
    except redis.RedisError as exc:
        raise BackendUnavailableError("redis", str(exc)) from exc


def ping(client: redis.Redis[Any]) -> None:
    """Raise BackendUnavailableError unless Redis answers."""
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BackendUnavailableError("redis", str(exc)) from exc
