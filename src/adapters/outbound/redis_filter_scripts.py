"""The stored filter's Lua scripts, and a typed call for each: one round trip per batch.

docs/stored-filter.md has the layout and the refill protocol; each script here carries the
part of the argument that it keeps.
"""

from __future__ import annotations

from dedup.adapters.outbound.redis_calls import RedisPipeline, queue_script
from dedup.adapters.outbound.redis_client import DRIVER_ERRORS, RedisConnection
from dedup.adapters.outbound.redis_filter_keys import GenerationKeys
from dedup.domain.errors import BackendUnavailableError
from redis.commands.core import Script

# Ops per BITFIELD call inside the scripts: Lua's unpack() is limited by its C stack.
_CHUNK = "1000"

# A state counts only on the server (run_id) that set it: a restart that reloads an AOF or
# RDB file, or a failover to a replica, may keep the header but not the last second of bits,
# so anywhere else the filter starts again from INCOMPLETE. KEYS[1] is the filter (its header
# in block 0, so a flush or eviction takes header and bits together), KEYS[2] the run_id.
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

# A flag per fingerprint, '1' where all its bits are set; none unless the filter is COMPLETE.
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

# OR each mask into its block inside the script: BITFIELD cannot OR, and a read-then-write
# from Python would lose bits when two workers add to one block at once. Two fingerprints of
# one chunk may share a block: their masks are merged into one SET, or the later SET (old
# value | its own mask) would drop the earlier one's bits.
_ADD = (
    _EACH_CHUNK
    + """
each_chunk(ARGV[1], tonumber(ARGV[2]), function(get, old, masks)
  local set, at = {}, {}
  for i = 1, #old do
    local offset = get[3 * i]
    if at[offset] then
      set[at[offset]] = bit.bor(set[at[offset]], masks[i])
    else
      set[#set + 1] = 'SET'; set[#set + 1] = 'i32'; set[#set + 1] = offset
      set[#set + 1] = bit.bor(old[i], masks[i])
      at[offset] = #set
    end
  end
  redis.call('BITFIELD', KEYS[1], unpack(set))
end)
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return 1
"""
)

_STATE_OF = _STATE + "\nreturn state()\n"

# Refill, step 1: INCOMPLETE -> REFILLING under the lock (KEYS[3]). From here on, a loss
# erases this header with the bits, so finish() can tell that one happened.
_BEGIN = (
    _STATE
    + """
if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[1]) then return -1 end
if state() == 2 then redis.call('DEL', KEYS[3]) return 2 end
set_state(1, ARGV[2])
return 1
"""
)

# Refill, step 3: only a filter still REFILLING (no loss since begin) takes the upload
# (KEYS[4]) and becomes COMPLETE; the lock (KEYS[3]) and upload go either way.
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

# After additions were lost (Redis failed while the worker stored on): the filter is no
# longer complete. Only its header changes, and a missing filter is INCOMPLETE already.
_RESET = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('BITFIELD', KEYS[1], 'SET', 'i32', '#0', 0)
end
return 1
"""


class FilterScripts:
    """The scripts, registered on the connection's client; a typed call or queuing for each."""

    def __init__(self, connection: RedisConnection) -> None:
        self._connection = connection

    def all(self) -> list[Script]:
        """Every script, for pipelined() to load on a node that lacks them."""
        texts = (_PROBE, _ADD, _STATE_OF, _BEGIN, _FINISH, _RESET)
        return [self._connection.script(text) for text in texts]

    def probe(self, keys: GenerationKeys, packed: bytes) -> tuple[int, bytes]:
        """The filter's state, and a flag (b"1" or b"0") per packed fingerprint if COMPLETE."""
        try:
            state, held = self._connection.script(_PROBE)(keys.state, [packed, _CHUNK])
        except DRIVER_ERRORS as exc:
            raise BackendUnavailableError("redis", str(exc)) from exc
        return int(state), bytes(held)

    def queue_probe(self, pipe: RedisPipeline, keys: GenerationKeys, packed: bytes) -> None:
        """Queue a probe on the pipeline: its reply is [state, flags], as probe() answers."""
        queue_script(pipe, self._connection.script(_PROBE), keys.state, [packed, _CHUNK])

    def add(self, pipe: RedisPipeline, keys: GenerationKeys, packed: bytes, expire_at: int) -> None:
        """Queue, on the pipeline, the addition of the packed fingerprints to the filter."""
        queue_script(
            pipe, self._connection.script(_ADD), [keys.filter], [packed, _CHUNK, expire_at]
        )

    def state_of(self, pipe: RedisPipeline, keys: GenerationKeys) -> None:
        """Queue a read of the filter's state on the pipeline."""
        queue_script(pipe, self._connection.script(_STATE_OF), keys.state, [])

    def reset(self, pipe: RedisPipeline, keys: GenerationKeys) -> None:
        """Queue, on the pipeline, the filter's return to INCOMPLETE (its bits stay)."""
        queue_script(pipe, self._connection.script(_RESET), [keys.filter], [])

    def begin(
        self, pipe: RedisPipeline, keys: GenerationKeys, *, lock_seconds: int, expire_at: int
    ) -> None:
        """Queue a try to begin: it answers REFILLING if it began, -1 if locked."""
        script = self._connection.script(_BEGIN)
        queue_script(pipe, script, [*keys.state, keys.lock], [lock_seconds, expire_at])

    def finish(
        self, pipe: RedisPipeline, keys: GenerationKeys, bitmap: bytes, *, ttl: int, expire_at: int
    ) -> None:
        """Queue the upload and the finish: it answers 1 if the bitmap went in (COMPLETE)."""
        pipe.set(keys.refill, bitmap, ex=ttl)  # same slot, so the same node, in order
        script = self._connection.script(_FINISH)
        queue_script(pipe, script, [*keys.state, keys.lock, keys.refill], [expire_at])
