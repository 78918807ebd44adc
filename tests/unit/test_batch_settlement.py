"""BatchSettlement: the one rule set for what a failed flush means to each submission in it."""

from __future__ import annotations

from collections.abc import Callable

from dedup.application.batch_settlement import BatchSettlement, Failure, failure_of
from dedup.domain.errors import BackendUnavailableError, PoisonEventError
from dedup.domain.event import EventId

from tests.builders import an_event_id

Submission = list[EventId]
Flush = Callable[[list[EventId]], BaseException | None]


def submissions(count: int) -> list[Submission]:
    return [[an_event_id(), an_event_id()] for _ in range(count)]


def settle(
    taken: list[Submission], flush: Flush, *, named: bool = True
) -> tuple[list[BaseException | str | None], list[list[EventId]]]:
    """Drive a settlement as a batching loop does: what each submission heard, and every
    batch flushed. A submission not settled at the end reads "unsettled"."""
    settlement = BatchSettlement(taken, event_ids=(lambda s: s) if named else None)
    heard: dict[int, BaseException | None] = {}
    flushed: list[list[EventId]] = []
    while (group := settlement.next()) is not None:
        batch = [event_id for submission in group for event_id in submission]
        flushed.append(batch)
        for submission, error in settlement.record(group, flush(batch)):
            assert id(submission) not in heard, "settled twice"
            heard[id(submission)] = error
    return [heard.get(id(submission), "unsettled") for submission in taken], flushed


def poison_in(poison: set[EventId], *, name_them: bool = True) -> Flush:
    def flush(batch: list[EventId]) -> BaseException | None:
        found = poison.intersection(batch)
        if not found:
            return None
        return PoisonEventError("refused", event_ids=found if name_them else ())

    return flush


def test_only_domain_errors_name_an_outage_or_a_poison_and_the_rest_are_bugs() -> None:
    assert failure_of(BackendUnavailableError("broker")) is Failure.UNAVAILABLE
    assert failure_of(PoisonEventError("refused")) is Failure.POISON
    # A driver's error that its adapter did not translate is a bug, not an outage.
    assert failure_of(ConnectionResetError()) is Failure.BUG
    assert failure_of(KeyError("a bug")) is Failure.BUG


def test_a_flush_that_succeeds_settles_every_submission_as_done() -> None:
    taken = submissions(3)

    heard, flushed = settle(taken, lambda batch: None)

    assert heard == [None, None, None]
    assert len(flushed) == 1


def test_an_outage_fails_every_submission_of_the_flush_each_with_its_own_error() -> None:
    taken = submissions(4)
    cause = ConnectionResetError("gone")
    outage = BackendUnavailableError("clickhouse", "down")
    outage.__cause__ = cause

    heard, flushed = settle(taken, lambda batch: outage)

    assert all(isinstance(error, BackendUnavailableError) for error in heard)
    assert {str(error) for error in heard} == {"clickhouse unavailable: down"}
    assert len({id(error) for error in heard}) == 4  # raised in four callers: four objects
    assert all(getattr(error, "__cause__", None) is cause for error in heard)
    assert len(flushed) == 1  # no retry here: retrying is the caller's policy


def test_a_named_poison_fails_only_its_submissions_and_the_rest_is_flushed_again() -> None:
    taken = submissions(5)
    poison = {taken[1][0], taken[3][1]}

    heard, flushed = settle(taken, poison_in(poison))

    assert [type(error) for error in heard] == [
        type(None),
        PoisonEventError,
        type(None),
        PoisonEventError,
        type(None),
    ]
    rest = [event_id for i in (0, 2, 4) for event_id in taken[i]]
    assert flushed[1:] == [rest]  # one more flush, of the others, together


def test_a_poison_that_names_no_event_is_found_by_flushing_the_submissions_apart() -> None:
    taken = submissions(4)

    heard, flushed = settle(taken, poison_in({taken[2][0]}, name_them=False))

    assert [isinstance(error, PoisonEventError) for error in heard] == [False, False, True, False]
    assert heard[0] is None and heard[1] is None and heard[3] is None
    assert flushed[1:] == taken  # each alone


def test_a_poison_is_found_apart_when_the_loop_cannot_say_which_events_it_holds() -> None:
    taken = submissions(3)

    heard, flushed = settle(taken, poison_in({taken[0][1]}), named=False)

    assert isinstance(heard[0], PoisonEventError)
    assert heard[1:] == [None, None]
    assert flushed[1:] == taken


def test_a_bug_reaches_as_itself_only_the_submissions_that_fail_alone() -> None:
    taken = submissions(4)
    bad = taken[1][0]
    raised: list[KeyError] = []

    def flush(batch: list[EventId]) -> BaseException | None:
        if bad not in batch:
            return None
        raised.append(KeyError("a bug"))
        return raised[-1]

    heard, flushed = settle(taken, flush)

    assert heard == [None, raised[-1], None, None]  # the very error, not an "unavailable"
    assert flushed[1:] == taken


def test_an_outage_met_while_flushing_apart_fails_the_rest_without_flushing_them() -> None:
    taken = submissions(4)
    answers: list[BaseException | None] = [
        KeyError("a bug"),
        None,
        BackendUnavailableError("redis"),
    ]

    heard, flushed = settle(taken, lambda batch: answers.pop(0))

    assert heard[0] is None  # flushed alone before the outage
    assert all(isinstance(error, BackendUnavailableError) for error in heard[1:])
    assert len(flushed) == 3  # the whole, the first alone, the second alone; not the last two


def test_a_poison_in_what_was_flushed_again_is_set_aside_in_turn() -> None:
    taken = submissions(3)
    answers = iter(
        [
            PoisonEventError("refused", event_ids={taken[0][0]}),
            PoisonEventError("refused", event_ids={taken[2][0]}),
            None,
        ]
    )

    heard, flushed = settle(taken, lambda batch: next(answers))

    assert isinstance(heard[0], PoisonEventError) and isinstance(heard[2], PoisonEventError)
    assert heard[1] is None
    assert flushed[-1] == taken[1]


def test_an_empty_batch_needs_no_flush() -> None:
    assert BatchSettlement([]).next() is None
