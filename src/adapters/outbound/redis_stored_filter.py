"""The StoredFilter on Redis: one blocked Bloom filter per generation, a string per filter.

Layout and rotation are in bloom.py. Each batch is one script call per filter: a lookup
reads the header and one block per fingerprint and answers a flag for each; an addition ORs
each fingerprint's mask into its block atomically (BITFIELD cannot OR, and a read-then-write
from Python would lose bits when two workers add to one block at once). The header lives in
the same string as the bits, so a flush, restart or eviction takes both together: a filter
can be lost, never left claiming to be complete with bits missing. A restart that reloads
persisted data, or a failover, may keep the header but not the last writes, so a state
counts only on the server (its run_id) that set it.

The refill protocol (FilterRefill), after a loss:
1. begin: under a lock, header INCOMPLETE -> REFILLING (in the filter's own string).
2. wait `settle` (longer than any insert takes), then read every fingerprint stored since the
   filter's span began, build the bitmap locally and upload it beside the filter.
3. finish: in one script, if the header still says REFILLING (no loss since step 1), OR the
   upload in and mark it COMPLETE.
Why nothing stored is missing then: a worker adds an event's bits before inserting it. If
that addition came after step 1, no loss has erased it since (a loss would have erased the
REFILLING header too). If it came before, the insert ended within `settle` of it, so before
step 2's read, which then holds it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from dedup.adapters.outbound.bloom import BloomLayout, FilterState, Generations
from dedup.adapters.outbound.redis_calls import execute
from dedup.application.ports import FilterGap, FilterRefill, StoredFilter
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.event import Event
from dedup.domain.fingerprint import EventFingerprint

# Ops per BITFIELD call inside the scripts: Lua's unpack() is limited by its C stack.
_SCRIPT_CHUNK = "1000"

# A filter's state, as far as this server can vouch for it. The header survives a restart
# that reloads an AOF or an RDB file, or a failover to a replica, but bits written in the last
# second before it may not: so a state counts only on the server (run_id) that set it, and
# anywhere else the filter starts again from INCOMPLETE. KEYS[1] is the filter, KEYS[2] the
# run_id that set its state.
_STATE = """
local function run_id()
  return string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
end
local function state()
  local s = redis.call('BITFIELD', KEYS[1], 'GET', 'i32', '#0')[1]
  if s ~= 0 and redis.call('GET', KEYS[2]) ~= run_id() then
    redis.call('BITFIELD', KEYS[1], 'SET', 'i32', '#0', 0)
    return 0
  end
  return s
end
local function set_state(s, expire_at)
  redis.call('BITFIELD', KEYS[1], 'SET', 'i32', '#0', s)
  redis.call('SET', KEYS[2], run_id())
  redis.call('EXPIREAT', KEYS[1], expire_at)
  redis.call('EXPIREAT', KEYS[2], expire_at)
end
"""

# Both batch scripts read the blocks of (block, mask) pairs, `chunk` at a time, and hand each
# chunk's offsets, current values and masks to `visit`.
_EACH_CHUNK = """
local function each_chunk(packed, chunk, visit)
  local n = #packed / 8
  for first = 0, n - 1, chunk do
    local get, masks = {}, {}
    for i = first, math.min(n, first + chunk) - 1 do
      local block, mask = struct.unpack('>I4i4', packed, i * 8 + 1)
      get[#get + 1] = 'GET'; get[#get + 1] = 'i32'; get[#get + 1] = '#' .. block
      masks[#masks + 1] = mask
    end
    visit(get, redis.call('BITFIELD', KEYS[1], unpack(get)), masks)
  end
end
"""

_PROBE = (
    _STATE
    + _EACH_CHUNK
    + """
if state() ~= 2 then return {0, ''} end
local held = {}
each_chunk(ARGV[1], tonumber(ARGV[2]), function(_, values, masks)
  for i = 1, #values do
    held[#held + 1] = (bit.band(values[i], masks[i]) == masks[i]) and '1' or '0'
  end
end)
return {2, table.concat(held)}
"""
)

_ADD = (
    _EACH_CHUNK
    + """
each_chunk(ARGV[1], tonumber(ARGV[2]), function(get, old, masks)
  local set = {}
  for i = 1, #old do
    set[#set + 1] = 'SET'; set[#set + 1] = 'i32'; set[#set + 1] = get[3 * i]
    set[#set + 1] = bit.bor(old[i], masks[i])
  end
  redis.call('BITFIELD', KEYS[1], unpack(set))
end)
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return 1
"""
)

_STATE_OF = (
    _STATE
    + """
return state()
"""
)

# KEYS[3] is the refill lock.
_BEGIN = (
    _STATE
    + """
if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[1]) then return -1 end
if state() == 2 then redis.call('DEL', KEYS[3]) return 2 end
set_state(1, ARGV[2])
return 1
"""
)

# KEYS[3] is the refill lock, KEYS[4] the uploaded bitmap.
_FINISH = (
    _STATE
    + """
local done = 0
if state() == 1 then
  redis.call('BITOP', 'OR', KEYS[1], KEYS[1], KEYS[4])
  set_state(2, ARGV[1])
  done = 1
end
redis.call('DEL', KEYS[3], KEYS[4])
return done
"""
)


def utc_now() -> datetime:
    return datetime.now(UTC)


class RedisStoredFilter(StoredFilter, FilterRefill):
    """Filters at `{prefix}stored:{<window>s:<generation>}` (one hash slot with their helpers)."""

    def __init__(
        self,
        client: redis.Redis[Any],
        *,
        window: timedelta,
        size_bytes: int,
        prefix: str = "dedup:",
        clock: Callable[[], datetime] = utc_now,
        refill_lock_seconds: int = 3600,
    ) -> None:
        self._client = client
        self._generations = Generations(window)
        self._layout = BloomLayout.of_bytes(size_bytes)
        self._prefix = prefix
        self._clock = clock
        self._lock_seconds = refill_lock_seconds
        self._probe = client.register_script(_PROBE)
        self._add = client.register_script(_ADD)
        self._state_of = client.register_script(_STATE_OF)
        self._begin = client.register_script(_BEGIN)
        self._finish = client.register_script(_FINISH)

    @classmethod
    def from_url(
        cls, url: str, *, window: timedelta, size_bytes: int, prefix: str = "dedup:"
    ) -> RedisStoredFilter:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=30, health_check_interval=30
        )
        return cls(client, window=window, size_bytes=size_bytes, prefix=prefix)

    # --- StoredFilter -------------------------------------------------------------------------

    def unseen(self, fingerprints: Collection[EventFingerprint]) -> set[EventFingerprint]:
        if not fingerprints:
            return set()
        fps = list(fingerprints)
        keys = self._keys(self._generations.of(self._clock()))
        state, held = self._call(self._probe, keys, [self._layout.packed(fps), _SCRIPT_CHUNK])
        if state != FilterState.COMPLETE:
            return set()
        # One flag per fingerprint: b"1" where every one of its bits is set.
        return {fp for fp, flag in zip(fps, held, strict=True) if flag == 0x30}

    def add(self, events: Sequence[Event]) -> None:
        by_generation: dict[int, list[EventFingerprint]] = {}
        for event in events:
            for generation in self._generations.holding(event.received_at):
                by_generation.setdefault(generation, []).append(event.fingerprint)
        if not by_generation:
            return
        pipe = self._client.pipeline(transaction=False)
        for generation, fps in sorted(by_generation.items()):
            packed = self._layout.packed(fps)
            self._add(
                [self._key(generation)], [packed, _SCRIPT_CHUNK, self._expiry(generation)], pipe
            )
        execute(pipe)

    # --- FilterRefill -------------------------------------------------------------------------

    def gaps(self) -> list[FilterGap]:
        current = self._generations.of(self._clock())
        generations = (current, current + 1)
        pipe = self._client.pipeline(transaction=False)
        for generation in generations:
            self._state_of(self._keys(generation), [], pipe)
        states = execute(pipe)
        return [
            FilterGap(name=self._key(generation), since=self._generations.since(generation))
            for generation, state in zip(generations, states, strict=True)
            if state != FilterState.COMPLETE
        ]

    def begin(self, gap: FilterGap) -> bool:
        generation = self._generation_of(gap)
        answer = self._call(
            self._begin,
            [*self._keys(generation), f"{gap.name}:lock"],
            [self._lock_seconds, self._expiry(generation)],
        )
        return bool(answer == FilterState.REFILLING)

    def finish(self, gap: FilterGap, fingerprints: Iterable[EventFingerprint]) -> bool:
        upload = f"{gap.name}:refill"
        bitmap = self._layout.bitmap(fingerprints)
        try:
            self._client.set(upload, bytes(bitmap), ex=self._lock_seconds)
        except redis.RedisError as exc:
            raise BackendUnavailableError("redis", str(exc)) from exc
        keys = [*self._keys(self._generation_of(gap)), f"{gap.name}:lock", upload]
        done = self._call(self._finish, keys, [self._expiry(self._generation_of(gap))])
        return bool(done)

    # --- the rest -----------------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()

    def _key(self, generation: int) -> str:
        window = int(self._generations.length.total_seconds())
        return f"{self._prefix}stored:{{{window}s:{generation}}}"

    def _keys(self, generation: int) -> list[str]:
        """The filter and the run_id of the server that set its state (one hash slot)."""
        key = self._key(generation)
        return [key, f"{key}:run"]

    def _generation_of(self, gap: FilterGap) -> int:
        return int(gap.name.rsplit(":", 1)[1].rstrip("}"))

    def _expiry(self, generation: int) -> int:
        """A filter is useless once its generation is over; an hour later it goes."""
        end = (generation + 1) * self._generations.length.total_seconds()
        return int(end) + 3600

    @staticmethod
    def _call(script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return script(keys, args)
        except redis.RedisError as exc:
            raise BackendUnavailableError("redis", str(exc)) from exc
