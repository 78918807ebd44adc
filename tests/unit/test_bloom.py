"""The filter's layout and rotation: pure arithmetic, shared by Redis and the local refill."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from dedup.adapters.outbound.bloom import CLOCK_SKEW, HEADER_BLOCKS, BloomLayout, Generations
from dedup.domain.fingerprint import EventFingerprint

WINDOW = timedelta(days=30)


def a_fingerprint() -> EventFingerprint:
    return EventFingerprint(os.urandom(16))


def test_a_layout_fits_the_size_it_is_given_header_included() -> None:
    layout = BloomLayout.of_bytes(1 << 20)
    assert layout.size == 1 << 20
    assert layout.blocks == (1 << 18) - HEADER_BLOCKS
    with pytest.raises(ValueError):
        BloomLayout.of_bytes(4)


def test_every_fingerprint_lands_in_a_data_block_with_one_to_five_bits() -> None:
    layout = BloomLayout(blocks=7)
    for _ in range(500):
        block, mask = layout.locate(a_fingerprint())
        assert HEADER_BLOCKS <= block <= layout.blocks
        assert 1 <= bin(mask).count("1") <= 5
        assert 0 < mask < 1 << 32


def test_the_local_bitmap_sets_exactly_the_bits_of_its_fingerprints() -> None:
    layout = BloomLayout(blocks=1024)
    fps = [a_fingerprint() for _ in range(50)]
    bitmap = layout.bitmap(fps)
    assert len(bitmap) == layout.size
    assert bitmap[:4] == bytes(4)  # the header stays INCOMPLETE
    expected: dict[int, int] = {}
    for fp in fps:
        block, mask = layout.locate(fp)
        expected[block] = expected.get(block, 0) | mask
    for block in range(layout.blocks + HEADER_BLOCKS):
        value = int.from_bytes(bitmap[block * 4 : block * 4 + 4], "big")
        assert value == expected.get(block, 0)


def test_packed_pairs_are_block_then_signed_mask_big_endian() -> None:
    layout = BloomLayout(blocks=1 << 20)
    fp = a_fingerprint()
    block, mask = layout.locate(fp)
    packed = layout.packed([fp])
    assert int.from_bytes(packed[:4], "big") == block
    assert int.from_bytes(packed[4:], "big", signed=True) & 0xFFFFFFFF == mask


def test_an_event_goes_into_its_generation_and_the_next() -> None:
    generations = Generations(WINDOW)
    start = datetime.fromtimestamp(100 * WINDOW.total_seconds(), UTC)
    middle = start + WINDOW / 2
    assert generations.of(middle) == 100
    assert generations.holding(middle) == {100, 101}
    assert generations.since(100) == start - WINDOW


def test_an_event_just_after_a_boundary_also_goes_into_the_generation_before() -> None:
    generations = Generations(WINDOW)
    start = datetime.fromtimestamp(100 * WINDOW.total_seconds(), UTC)
    # A worker whose clock is a little behind the API's still reads generation 99.
    assert generations.holding(start + CLOCK_SKEW / 2) == {99, 100, 101}


def test_every_event_in_the_window_is_in_the_filter_a_lookup_reads() -> None:
    generations = Generations(WINDOW)
    base = datetime(2026, 11, 29, tzinfo=UTC)
    for hours in range(0, 24 * 90, 7):
        now = base + timedelta(hours=hours)
        current = generations.of(now)
        for back in range(0, 30 * 24 + 1, 13):
            received = now - timedelta(hours=back)
            if received >= now - WINDOW:
                assert current in generations.holding(received)
                assert received >= generations.since(current)
