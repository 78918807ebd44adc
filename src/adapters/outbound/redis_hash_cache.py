"""The HashCache on Redis: one `SET NX GET EX` per fingerprint, pipelined per batch.

A claim's value is the holder; a value pointed at after the insert ends in `s`: its holder is
stored, so a later copy is recorded against it without asking ClickHouse. A value that is no
claim (another writer's, a key of another type) is unknown: the use case asks ClickHouse.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from uuid import UUID

from dedup.adapters.outbound.redis_calls import RedisPipeline, ping, pipelined
from dedup.adapters.outbound.redis_client import RedisClient, RedisConnection
from dedup.adapters.outbound.redis_outage import RedisOutage
from dedup.adapters.outbound.redis_point_script import PointScript
from dedup.application.ports import Claims, HashCache, Repoint
from dedup.domain.event import EventId, Holder
from dedup.domain.fingerprint import EventFingerprint

log = logging.getLogger(__name__)

_CLAIM = re.compile(rb"[0-9a-f]{64}s?")
_STORED = b"s"


def encode_holder(holder: Holder, *, stored: bool = False) -> bytes:
    """32 hex digits of the event id, then 32 of its content digest, then `s` if stored."""
    return f"{holder.event_id.hex}{holder.content.hex}{'s' if stored else ''}".encode("ascii")


def decode_holder(raw: object) -> tuple[Holder, bool]:
    """The inverse of encode_holder; ValueError for anything else, never a guess."""
    value = raw.encode("ascii", "replace") if isinstance(raw, str) else raw
    if not isinstance(value, bytes) or not _CLAIM.fullmatch(value):
        raise ValueError(f"not a dedup claim: {raw!r}")
    text = value.decode("ascii")
    holder = Holder(
        event_id=EventId(UUID(hex=text[:32])), content=EventFingerprint.from_hex(text[32:64])
    )
    return holder, value.endswith(_STORED)


class RedisHashCache(HashCache):
    """Claims live at `{prefix}{fingerprint}` for ttl_seconds; ClickHouse stays the truth."""

    def __init__(
        self,
        client: RedisClient | RedisConnection,
        *,
        ttl_seconds: int,
        prefix: str = "dedup:",
        outage: RedisOutage | None = None,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        self._redis = client if isinstance(client, RedisConnection) else RedisConnection.of(client)
        self._ttl = ttl_seconds
        self._prefix = prefix
        self._outage = outage or RedisOutage()
        self._point = PointScript(self._redis)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        ttl_seconds: int,
        prefix: str = "dedup:",
        outage: RedisOutage | None = None,
    ) -> RedisHashCache:
        """A cache on its own client (one server or a cluster); it connects on first use."""
        client = RedisConnection.from_url(
            url,
            socket_connect_timeout=2,
            socket_timeout=5,
            # A pooled connection idle behind a NAT or a restarted server is checked before reuse.
            health_check_interval=30,
            socket_keepalive=True,
        )
        return cls(client, ttl_seconds=ttl_seconds, prefix=prefix, outage=outage)

    def claim(self, owners: Mapping[EventFingerprint, Holder]) -> Claims:
        if not owners:
            return Claims()

        # No transaction: each SET is atomic on its own, and one round trip is what matters.
        # The key is the fingerprint itself (no hash tag), so Redis Cluster spreads the claims
        # over its slots by fingerprint; redis-py's cluster pipeline splits the batch per node.
        def claims(pipe: RedisPipeline) -> None:
            for fp, holder in owners.items():
                pipe.set(self._key(fp), encode_holder(holder), nx=True, get=True, ex=self._ttl)

        replies = self._outage.call(lambda: pipelined(self._redis, claims, wrong_type_ok=True))
        # SET NX GET answers nil when it set the key (ours now), else the value it kept.
        held: dict[EventFingerprint, Holder] = {}
        stored: list[EventFingerprint] = []
        unknown = 0
        for (fp, holder), reply in zip(owners.items(), replies, strict=True):
            held[fp] = holder  # ours, or nobody's that we can tell
            if reply is None:
                continue
            try:
                held[fp], known = decode_holder(reply)
            except ValueError:
                unknown += 1
                continue
            if known:
                stored.append(fp)
        if unknown:
            log.warning(
                "%d values under %s* are no claim; asking ClickHouse", unknown, self._prefix
            )
        return Claims(held, stored=stored)

    def point(self, repoints: Mapping[EventFingerprint, Repoint]) -> None:
        if not repoints:
            return

        def points(pipe: RedisPipeline) -> None:
            for fp, repoint in repoints.items():
                self._point.queue(
                    pipe,
                    self._key(fp),
                    replaces=repoint.replaces.event_id.hex,
                    value=encode_holder(repoint.holder, stored=True),
                    ttl_seconds=self._ttl,
                )

        self._outage.call(
            lambda: pipelined(self._redis, points, scripts=[self._point.script], wrong_type_ok=True)
        )

    def ping(self) -> None:
        """Raise BackendUnavailableError unless Redis answers."""
        ping(self._redis)

    def close(self) -> None:
        self._redis.close()

    def _key(self, fp: EventFingerprint) -> str:
        return f"{self._prefix}{fp.hex}"
