"""Where event ids come from: uuid-utils' UUIDv7, reseeded in a forked child."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache

import uuid_utils
from dedup.domain.event import EventId
from uuid_utils.compat import uuid7


def new_event_id() -> EventId:
    """A fresh time-ordered id (RFC 9562 version 7), monotonic within a millisecond."""
    return EventId(uuid7())


@cache
def event_id_source() -> Callable[[], EventId]:
    """The process's id source; registers, once, the reseed a forked child needs.

    uuid-utils draws from a user-space generator that a fork copies: without a reseed, a
    parent and its child would hand out the same random bits.
    """
    os.register_at_fork(after_in_child=_reseed_in_child)
    return new_event_id


def _reseed_in_child() -> None:
    uuid_utils.reseed_rng()  # looked up at each fork, where tests/unit/test_ids.py watches it
