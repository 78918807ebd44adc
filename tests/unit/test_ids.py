"""The process's event ids: unique across threads and across a fork."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

from dedup.infrastructure.ids import event_id_source


def test_ids_are_version_7_and_unique_across_threads() -> None:
    new_id = event_id_source()

    def draw(_: int) -> list[UUID]:
        return [new_id() for _ in range(2000)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = [event_id for chunk in pool.map(draw, range(8)) for event_id in chunk]
    assert len(set(ids)) == len(ids) == 16_000
    assert {event_id.version for event_id in ids} == {7}


def test_a_forked_child_never_repeats_the_parents_random_bits() -> None:
    new_id = event_id_source()
    new_id()  # the generator's state is the parent's now, which the child inherits
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_id().bytes)
        os._exit(0)
    os.close(write)
    child = UUID(bytes=os.read(read, 16))
    os.close(read)
    os.waitpid(pid, 0)
    parent = new_id()
    assert child.bytes[8:] != parent.bytes[8:]  # the last 62 bits are random in both
