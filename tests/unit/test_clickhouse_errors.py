"""A ClickHouse failure is poison only when an insert's rows are refused; else it is waited out."""

from __future__ import annotations

import pytest
from dedup.adapters.outbound.clickhouse.errors import code_in, engine_error
from dedup.domain.errors import BackendUnavailableError, PoisonEventError


@pytest.mark.parametrize(
    "code",
    [117, 131, 469],  # INCORRECT_DATA, TOO_LARGE_STRING_SIZE, VIOLATED_CONSTRAINT
)
def test_an_insert_refused_for_its_rows_is_poison(code: int) -> None:
    error = engine_error(
        RuntimeError(f"Code: {code}. DB::Exception: no"), code=code, inserting=True
    )
    assert isinstance(error, PoisonEventError)
    assert error.event_ids == frozenset()  # which rows: found by trying the batch apart


@pytest.mark.parametrize(
    ("code", "what"),
    [
        (252, "TOO_MANY_PARTS"),
        (241, "MEMORY_LIMIT_EXCEEDED"),
        (242, "TABLE_IS_READ_ONLY"),
        (60, "UNKNOWN_TABLE (not migrated yet)"),
        (210, "NETWORK_ERROR"),
        (None, "a socket error with no code"),
        (999_999, "a code this release does not know"),
    ],
)
def test_every_other_failure_is_the_engine_away_and_is_waited_out(
    code: int | None, what: str
) -> None:
    error = engine_error(OSError(what), code=code, inserting=True)
    assert isinstance(error, BackendUnavailableError)
    assert error.backend == "clickhouse"


def test_a_query_is_never_poison_whatever_its_code() -> None:
    error = engine_error(RuntimeError("Code: 53. type mismatch"), code=53, inserting=False)
    assert isinstance(error, BackendUnavailableError)


def test_the_code_is_read_from_chdbs_message() -> None:
    assert code_in("Code: 469. DB::Exception: Constraint `short` ... violated") == 469
    assert code_in("Connection refused") is None
