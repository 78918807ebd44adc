"""Errors the domain and its ports speak."""

from __future__ import annotations


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
        super().__init__(f"{backend} unavailable" + (f": {detail}" if detail else ""))
