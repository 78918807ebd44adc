"""The accounting helper itself: it passes what the invariant allows and names what breaks it."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from tests.accounting import Ledger, assert_accounting_invariant


def ids(n: int) -> list[UUID]:
    return [uuid4() for _ in range(n)]


def test_stored_events_and_duplicates_of_them_account_for_every_ok() -> None:
    a, b, c = ids(3)
    ledger = Ledger(events=((a, b"fa"), (b, b"fb")), duplicates=((c, a),))
    tally = assert_accounting_invariant([a, b, c], ledger)
    assert (tally.stored, tally.recorded, tally.chained, tally.unasked) == (2, 1, 0, 0)


def test_a_chain_through_a_settled_loser_resolves_to_the_stored_winner() -> None:
    winner, loser, copy = ids(3)
    ledger = Ledger(events=((winner, b"f"),), duplicates=((loser, winner), (copy, loser)))
    assert assert_accounting_invariant([winner, loser, copy], ledger).chained == 1


def test_a_stored_event_nobody_was_told_ok_about_is_allowed() -> None:
    unasked, asked = ids(2)
    ledger = Ledger(events=((unasked, b"f"),), duplicates=((asked, unasked),))
    assert assert_accounting_invariant([asked], ledger).unasked == 1


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("lost", "lost"),
        ("twice", "fingerprints stored twice"),
        ("both", "both stored and recorded"),
        ("dangling", "resolves to no stored event"),
        ("cycle", "resolves to no stored event"),
    ],
)
def test_each_way_of_breaking_the_invariant_is_named(case: str, message: str) -> None:
    a, b, c = ids(3)
    ledgers = {
        "lost": Ledger(events=((a, b"f"),), duplicates=()),
        "twice": Ledger(events=((a, b"f"), (b, b"f")), duplicates=((c, a),)),
        "both": Ledger(events=((a, b"f"), (b, b"g")), duplicates=((b, a), (c, a))),
        "dangling": Ledger(events=((a, b"f"),), duplicates=((b, a), (c, uuid4()))),
        "cycle": Ledger(events=((a, b"f"),), duplicates=((b, c), (c, b))),
    }
    with pytest.raises(AssertionError, match=message):
        assert_accounting_invariant([a, b, c], ledgers[case])
