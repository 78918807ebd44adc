"""A read-only query on the store: its limits, its answer, and why one is refused."""

from __future__ import annotations

import enum
from collections.abc import Sequence

from attrs import field, frozen
from dedup.domain.errors import DedupError


def _positive(_instance: object, attribute: object, value: int) -> None:
    if value < 1:
        raise ValueError(f"a query limit must be positive, got {value}")


@frozen
class QueryLimits:
    """At most `rows` rows come back; the engine stops the statement after `seconds`."""

    rows: int = field(validator=_positive)
    seconds: int = field(validator=_positive)


@frozen
class ResultColumn:
    """A column of the answer: its name and its type as the engine spells it."""

    name: str
    type: str


@frozen
class QueryResult:
    """The first rows of the answer; `truncated` when the statement had more than the limit."""

    columns: tuple[ResultColumn, ...]
    rows: tuple[tuple[object, ...], ...]  # JSON values: numbers, strings, null, lists
    truncated: bool = False

    @classmethod
    def cut(
        cls, columns: Sequence[ResultColumn], rows: Sequence[Sequence[object]], *, limit: int
    ) -> QueryResult:
        """The answer to keep of `rows` when no more than `limit` may be shown."""
        kept = tuple(tuple(row) for row in rows[:limit])
        return cls(tuple(columns), kept, truncated=len(rows) > limit)


class Refusal(enum.Enum):
    """Why the store would not answer: the request must change, retrying cannot help."""

    WRITES = "writes"  # a write, DDL, a change of settings, a file written
    INVALID = "invalid"  # not one statement the engine can run: syntax, unknown names, two
    TIMEOUT = "timeout"  # it ran past the time limit and was stopped
    DENIED = "denied"  # the service that holds the store would not take it from this caller


class QueryRefusedError(DedupError):
    """The store refused the statement and nothing changed; `reason` says why, in its words."""

    def __init__(self, reason: str, *, refusal: Refusal) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refusal = refusal
