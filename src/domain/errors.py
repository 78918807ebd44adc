"""Errors the domain and its ports speak."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dedup.domain.event import EventId


class DedupError(Exception):
    """Base of every error this service raises on purpose."""


class InvalidEventError(DedupError):
    """The input is not an event this service can accept; the message says why."""

    def __init__(self, message: str, *, index: int | None = None) -> None:
        self.index = index
        super().__init__(message if index is None else f"item {index}: {message}")
        self.reason = message


class BackendUnavailableError(DedupError):
    """A backend (broker, cache, database) did not answer; the work may be retried."""

    def __init__(self, backend: str, detail: str = "") -> None:
        self.backend = backend
        self.detail = detail
        super().__init__(f"{backend} unavailable" + (f": {detail}" if detail else ""))


class PoisonEventError(DedupError):
    """Events that can never be stored as they are (undecodable, or refused by the store).

    Retrying cannot help, so they are set aside (a 422, a dead letter) and whatever shared
    their batch goes on without them. `event_ids` names them when the refusal says which;
    empty when it does not, and then whoever batched them finds out by trying them apart.
    """

    def __init__(self, reason: str, *, event_ids: Collection[EventId] = ()) -> None:
        self.reason = reason
        self.event_ids: frozenset[EventId] = frozenset(event_ids)
        super().__init__(reason)
