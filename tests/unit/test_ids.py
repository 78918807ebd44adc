"""The process's event ids: unique across threads and across a fork."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import pytest
import uuid_utils
from dedup.infrastructure.ids import event_id_source


def test_ids_are_version_7_and_unique_across_threads() -> None:
    new_id = event_id_source()

    def draw(_: int) -> list[UUID]:
        return [new_id() for _ in range(2000)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = [event_id for chunk in pool.map(draw, range(8)) for event_id in chunk]
    assert len(set(ids)) == len(ids) == 16_000
    assert {event_id.version for event_id in ids} == {7}


def in_a_child(report: Callable[[], bytes]) -> bytes:
    """What report() returns in a forked child of this process."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once
        os.write(write, report())
        os._exit(0)
    os.close(write)
    answer = os.read(read, 64)
    os.close(read)
    os.waitpid(pid, 0)
    return answer


def test_a_forked_child_reseeds_the_generator_before_its_first_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reseeded_in: list[int] = []
    reseed = uuid_utils.reseed_rng

    def watched() -> None:
        reseeded_in.append(os.getpid())
        reseed()

    monkeypatch.setattr(uuid_utils, "reseed_rng", watched)
    new_id = event_id_source()

    assert in_a_child(lambda: b"reseeded" if os.getpid() in reseeded_in else b"not") == b"reseeded"
    assert new_id().version == 7
    assert reseeded_in == []  # the parent keeps its generator


def test_a_forked_child_never_repeats_the_parents_random_bits() -> None:
    """The outcome the reseed is for. uuid-utils 1.2 passes this even without the hook (its
    generator already differs in a child); the test above is the one that needs the hook."""
    new_id = event_id_source()
    new_id()  # the generator's state is the parent's now, which the child inherits
    child = UUID(bytes=in_a_child(lambda: new_id().bytes))
    parent = new_id()
    assert child.bytes[8:] != parent.bytes[8:]  # the last 62 bits are random in both
