"""What a failed flush means for the submissions it held: one rule set for every batching loop.

GroupCommitter (the API's publish), BatchGatherer (the worker's store) and MemoryQueue (the
embedded store) each flush many callers' submissions at once. A BatchSettlement tells them
what to flush next and what each submission hears, from what the last flush raised.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, Protocol, TypeVar

from dedup.domain.errors import BackendUnavailableError, PoisonEventError
from dedup.domain.event import EventId

S = TypeVar("S")
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Failure(enum.Enum):
    """Why a flush failed, which decides who hears of it."""

    # The backend is away: every submission of the flush fails, to be retried (503, retry).
    UNAVAILABLE = "unavailable"
    # Some events can never succeed: the submissions holding them fail (422, dead letter),
    # the others are flushed again without them.
    POISON = "poison"
    # Anything else: never reported as an outage. Flushed apart, each submission that fails
    # alone hears the error as it is (500, retry): one event that trips a bug sinks no other.
    BUG = "bug"


def failure_of(error: BaseException) -> Failure:
    """The kind of a flush's error; adapters translate their drivers' errors before asking."""
    if isinstance(error, BackendUnavailableError):
        return Failure.UNAVAILABLE
    if isinstance(error, PoisonEventError):
        return Failure.POISON
    return Failure.BUG


Settled = list[tuple[S, BaseException | None]]


class Holding(Protocol[T_co]):
    """A submission that holds its items."""

    @property
    def items(self) -> Sequence[T_co]: ...


def event_ids_by_item(
    event_id: Callable[[T], EventId] | None,
) -> Callable[[Holding[T]], list[EventId]] | None:
    """BatchSettlement's `event_ids` for submissions of items: each item's id, by `event_id`."""
    if event_id is None:
        return None
    return lambda submission: [event_id(item) for item in submission.items]


class BatchSettlement(Generic[S]):
    """Flush each next() group, record() what it raised, until next() is None.

    `event_ids` says which events a submission holds, so that a PoisonEventError naming its
    events fails just their submissions; without it, or when the error names none of them,
    the submissions are flushed one by one to find them.
    """

    def __init__(
        self,
        submissions: Sequence[S],
        *,
        event_ids: Callable[[S], Iterable[EventId]] | None = None,
    ) -> None:
        self._event_ids = event_ids
        self._todo: deque[list[S]] = deque([list(submissions)] if submissions else [])

    def next(self) -> list[S] | None:
        """The submissions to flush together now; None once every one is settled."""
        return self._todo.popleft() if self._todo else None

    def record(self, group: list[S], error: BaseException | None) -> Settled[S]:
        """Those this flush settled, each with what it hears: None for done, else its error."""
        if error is None:
            return [(submission, None) for submission in group]
        if isinstance(error, BackendUnavailableError):
            # Those still to be flushed would only wait for the same backend: fail them now.
            waiting = [submission for later in self._todo for submission in later]
            self._todo.clear()
            return _each([*group, *waiting], error)
        if isinstance(error, PoisonEventError):
            poisoned = [submission for submission in group if self._holds(submission, error)]
            if poisoned:
                set_aside = {id(submission) for submission in poisoned}  # S need not hash
                rest = [submission for submission in group if id(submission) not in set_aside]
                if rest:
                    self._todo.appendleft(rest)
                return _each(poisoned, error)
        if len(group) == 1:
            return [(group[0], error)]
        # A poison that names no event of theirs, or a bug: flushed apart, each shows its own.
        self._todo.extendleft([submission] for submission in reversed(group))
        return []

    def _holds(self, submission: S, error: PoisonEventError) -> bool:
        if self._event_ids is None:
            return False
        return not error.event_ids.isdisjoint(self._event_ids(submission))


def _each(receivers: list[S], error: BackendUnavailableError | PoisonEventError) -> Settled[S]:
    """One error object per receiver: each raises it in its own caller, with its own traceback."""
    if len(receivers) == 1:
        return [(receivers[0], error)]
    return [(receiver, _copy(error)) for receiver in receivers]


def _copy(error: BackendUnavailableError | PoisonEventError) -> BaseException:
    fresh: BackendUnavailableError | PoisonEventError
    if isinstance(error, BackendUnavailableError):
        fresh = BackendUnavailableError(error.backend, error.detail)
    else:
        fresh = PoisonEventError(error.reason, event_ids=error.event_ids)
    # The copy stands for the original: it points at what caused it (the driver's error).
    fresh.__cause__ = error.__cause__ if error.__cause__ is not None else error
    return fresh
