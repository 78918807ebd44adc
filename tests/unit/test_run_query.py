"""RunQuery: the row limit a caller may ask for, and what it does with an empty query."""

from __future__ import annotations

import pytest
from dedup.application.run_query import RunQuery
from dedup.domain.query import QueryRefusedError, Refusal, ResultColumn

from tests.fakes import FakeStoreQuery

NUMBERS = "SELECT number FROM numbers(50)"


@pytest.fixture
def store() -> FakeStoreQuery:
    columns = (ResultColumn("number", "UInt64"),)
    return FakeStoreQuery(answers={NUMBERS: (columns, [(n,) for n in range(50)])})


def test_without_a_limit_the_default_number_of_rows_comes_back_and_says_it_was_cut(store):
    result = RunQuery(store=store, default_rows=10, max_rows=20).execute(NUMBERS)

    assert result.rows == tuple((n,) for n in range(10))
    assert result.truncated


def test_an_answer_within_the_limit_is_whole(store):
    result = RunQuery(store=store).execute(NUMBERS, rows=50)

    assert len(result.rows) == 50
    assert not result.truncated


@pytest.mark.parametrize("rows", [0, -1, 21])
def test_a_limit_outside_one_to_the_maximum_is_refused(store, rows):
    with pytest.raises(QueryRefusedError) as refused:
        RunQuery(store=store, max_rows=20).execute(NUMBERS, rows=rows)

    assert refused.value.refusal is Refusal.INVALID
    assert "from 1 to 20" in refused.value.reason


@pytest.mark.parametrize("sql", ["", "   ", "\n\t"])
def test_an_empty_query_is_refused_before_the_store_sees_it(sql):
    with pytest.raises(QueryRefusedError) as refused:
        RunQuery(store=FakeStoreQuery(down=True)).execute(sql)

    assert refused.value.refusal is Refusal.INVALID
