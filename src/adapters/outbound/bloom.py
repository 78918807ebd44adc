"""The shape of the stored-fingerprint filter, shared by its Redis and in-memory homes.

A blocked Bloom filter that rotates by generation; docs/stored-filter.md has the whole story.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from enum import IntEnum

from attrs import frozen
from dedup.domain.fingerprint import EventFingerprint

BLOCK_BITS = 32
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
    """Where each fingerprint's bits go in a filter of `blocks` 32-bit blocks.

    Block 0 is the header (the state), blocks 1.. the bits, big-endian in `BITFIELD i32 #n`
    order. One block per fingerprint means one read to test it and one atomic read-or-write
    to add it, which lets Redis do a batch in one script call. Fingerprints are BLAKE2b
    digests, so their bytes are already uniform: no further hashing.
    """

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

    def locate(self, fp: EventFingerprint) -> tuple[int, int]:
        """(block, mask): the block from the first 8 bytes, one bit from each of the next 5."""
        d = fp.digest
        mask = (
            1 << (d[8] & 31) | 1 << (d[9] & 31) | 1 << (d[10] & 31) | 1 << (d[11] & 31)
        ) | 1 << (d[12] & 31)
        return int.from_bytes(d[:8], "big") % self.blocks + HEADER_BLOCKS, mask

    def packed(self, fps: Sequence[EventFingerprint]) -> bytes:
        """(block, mask as i32) of each fingerprint, 8 bytes big-endian each, in order."""
        values: list[int] = []
        for fp in fps:
            block, mask = self.locate(fp)
            values += (block, _signed(mask))
        return struct.pack(f">{len(values)}i", *values)

    def bitmap(self, fps: Iterable[EventFingerprint]) -> bytearray:
        """The filter's bytes holding these fingerprints, header zero (INCOMPLETE)."""
        data = bytearray(self.size)
        for fp in fps:
            block, mask = self.locate(fp)
            at = block * 4
            value = int.from_bytes(data[at : at + 4], "big") | mask
            data[at : at + 4] = value.to_bytes(4, "big")
        return data


@frozen
class Generations:
    """Filters rotate every `length` L (the dedup window), since a Bloom filter cannot forget.

    Generation g spans [g*L, (g+1)*L) and its filter holds every fingerprint received from
    the start of g-1 on, so a lookup during g needs nothing older (now - L >= start of g-1).
    """

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
