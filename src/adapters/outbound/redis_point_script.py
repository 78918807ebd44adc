"""The compare-and-set behind RedisHashCache.point: one key per call, so one hash slot."""

from __future__ import annotations

from dedup.adapters.outbound.redis_calls import RedisPipeline, queue_script
from dedup.adapters.outbound.redis_client import RedisConnection
from redis.commands.core import Script

# KEYS[1] the claim; ARGV[1] the event id (32 hex) the caller believes the claim names,
# ARGV[2] the new value (the stored holder, marked), ARGV[3] the ttl in seconds.
# A claim that names another event was written after the caller's claim saw it: a contest's
# winner re-pointed there must not go back to its loser, so it is left alone, and so is a
# missing one (a copy then asks ClickHouse). A value that is no claim at all names nobody:
# the stored holder, which the caller found in ClickHouse, replaces it.
_POINT = """
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local claim = (#value == 64 or #value == 65) and string.find(value, '^[0-9a-f]+s?$')
if claim then
  local named = string.sub(value, 1, 32)
  if named ~= ARGV[1] and named ~= string.sub(ARGV[2], 1, 32) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


class PointScript:
    """The script, registered on the connection's client; queued on a pipeline, one per claim."""

    def __init__(self, connection: RedisConnection) -> None:
        self._connection = connection

    @property
    def script(self) -> Script:
        return self._connection.script(_POINT)

    def queue(
        self,
        pipe: RedisPipeline,
        key: str,
        *,
        replaces: str,
        value: bytes,
        ttl_seconds: int,
    ) -> None:
        """Queue the compare-and-set of `key` to `value` if it names `replaces` (32 hex)."""
        queue_script(pipe, self.script, [key], [replaces, value, ttl_seconds])
