"""The shape of the stored-fingerprint filter, shared by its Redis and in-memory homes.

A blocked Bloom filter: each fingerprint lives in one 32-bit block (from its first 8 bytes) as
up to BITS_PER_KEY bits (from its last 8). Fingerprints are BLAKE2b digests, so their bytes are
already uniform: no further hashing. One block per fingerprint means one read to test it and
one atomic read-or-write to add it, which is what lets Redis do a batch in one script call.

The bitmap is a string of 32-bit big-endian blocks, `BITFIELD ... i32 #n` order: block 0 is the
header (its state), blocks 1..blocks hold the bits. `bitmap()` builds the same bytes locally.

Generations: a filter answers for the dedup window, and Bloom filters cannot forget, so they
rotate. Generation g spans [g*L, (g+1)*L) with L the window, and filter g holds every
fingerprint received from the start of generation g-1 on: a lookup during g needs nothing
older (now - window >= start of g-1). An event received at r is added to the filters of
gen(r) and gen(r)+1, and of gen(r - skew) too, so an API clock a little ahead of a worker's
does not put it only in filters that worker has not reached yet.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from enum import IntEnum

from attrs import frozen

from domain.fingerprint import EventFingerprint

BLOCK_BITS = 32
BITS_PER_KEY = 5
HEADER_BLOCKS = 1
# An API clock this far ahead of a worker's still finds its events in the worker's filter.
CLOCK_SKEW = timedelta(minutes=5)


class FilterState(IntEnum):
    """Block 0 of a filter. Redis loses the header with the key, never apart from it."""

    INCOMPLETE = 0  # absent, new, or lost: its negative answers mean nothing
    REFILLING = 1  # a refill began and no loss has happened since
    COMPLETE = 2  # holds every stored fingerprint of its span: a negative answer is certain


def _signed(mask: int) -> int:
    """A 32-bit mask as BITFIELD's i32 (and Lua's bit library) sees it."""
    return mask - (1 << 32) if mask >= 1 << 31 else mask


@frozen
class BloomLayout:
    """Where each fingerprint's bits go in a filter of `blocks` 32-bit blocks."""

    blocks: int

    @classmethod
    def of_bytes(cls, size: int) -> BloomLayout:
        """The largest layout whose bitmap (header included) fits in `size` bytes."""
        blocks = size // (BLOCK_BITS // 8) - HEADER_BLOCKS
        if blocks < 1:
            raise ValueError(f"a filter needs at least 8 bytes, got {size}")
        return cls(blocks)

    @property
    def size(self) -> int:
        """Bytes in the bitmap, header included."""
        return (self.blocks + HEADER_BLOCKS) * BLOCK_BITS // 8

    def block(self, fp: EventFingerprint) -> int:
        return int.from_bytes(fp.digest[:8], "big") % self.blocks + HEADER_BLOCKS

    @staticmethod
    def mask(fp: EventFingerprint) -> int:
        bits = int.from_bytes(fp.digest[8:], "big")
        mask = 0
        for _ in range(BITS_PER_KEY):
            mask |= 1 << (bits & (BLOCK_BITS - 1))
            bits >>= 5
        return mask

    def packed_blocks(self, fps: Sequence[EventFingerprint]) -> bytes:
        """The block of each fingerprint, 4 bytes big-endian each, in order."""
        return struct.pack(f">{len(fps)}I", *(self.block(fp) for fp in fps))

    def packed_additions(self, fps: Sequence[EventFingerprint]) -> bytes:
        """(block, mask as i32) of each fingerprint, 8 bytes big-endian each."""
        return b"".join(struct.pack(">Ii", self.block(fp), _signed(self.mask(fp))) for fp in fps)

    @staticmethod
    def holds(block_value: int, fp: EventFingerprint) -> bool:
        """Whether a block (as read, signed or not) has every bit of the fingerprint set."""
        mask = BloomLayout.mask(fp)
        return block_value & 0xFFFFFFFF & mask == mask

    def bitmap(self, fps: Iterable[EventFingerprint]) -> bytearray:
        """The filter's bytes holding these fingerprints, header zero (INCOMPLETE)."""
        data = bytearray(self.size)
        for fp in fps:
            at = self.block(fp) * 4
            value = int.from_bytes(data[at : at + 4], "big") | self.mask(fp)
            data[at : at + 4] = value.to_bytes(4, "big")
        return data


@frozen
class Generations:
    """Filters rotate every `length` (the dedup window); see the module docstring."""

    length: timedelta

    def of(self, moment: datetime) -> int:
        return int(moment.timestamp() // self.length.total_seconds())

    def holding(self, received_at: datetime) -> set[int]:
        """The generations whose filter must hold an event received at that moment."""
        own = self.of(received_at)
        return {self.of(received_at - CLOCK_SKEW), own, own + 1}

    def since(self, generation: int) -> datetime:
        """Filter `generation` holds every fingerprint received from this moment on."""
        return datetime.fromtimestamp((generation - 1) * self.length.total_seconds(), UTC)
