"""What a ClickHouse failure means: the engine away (wait for it) or rows it refuses (poison).

Only an INSERT can be refused for its rows, and only for the codes below: errors about the
data itself, which the same rows meet on every try. Everything else — the network, "too many
parts", the memory limit, a read-only replica, a missing table before a migration, codes we
do not know — is the engine being unavailable for now: waited out, never a dead letter.
"""

from __future__ import annotations

import re
from functools import cache

from dedup.adapters.outbound.clickhouse.executor import BACKEND
from dedup.domain.errors import BackendUnavailableError, DedupError, PoisonEventError

# VIOLATED_CONSTRAINT (a CHECK the rows fail): newer than clickhouse-driver's table of codes.
_VIOLATED_CONSTRAINT = 469


@cache
def refused_rows() -> frozenset[int]:
    """ClickHouse's error codes about the rows an INSERT carries, by the driver's names."""
    # Imported on the first failure: the embedded profile never loads the driver otherwise.
    from clickhouse_driver.errors import ErrorCodes  # type: ignore[import-untyped]

    return frozenset(
        {
            ErrorCodes.CANNOT_PARSE_TEXT,
            ErrorCodes.CANNOT_PARSE_QUOTED_STRING,
            ErrorCodes.CANNOT_PARSE_INPUT_ASSERTION_FAILED,
            ErrorCodes.CANNOT_PARSE_DATE,
            ErrorCodes.CANNOT_PARSE_DATETIME,
            ErrorCodes.TYPE_MISMATCH,
            ErrorCodes.ARGUMENT_OUT_OF_BOUND,
            ErrorCodes.CANNOT_CONVERT_TYPE,
            ErrorCodes.CANNOT_PARSE_NUMBER,
            ErrorCodes.INCORRECT_DATA,
            ErrorCodes.TOO_LARGE_STRING_SIZE,
            ErrorCodes.CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN,
            _VIOLATED_CONSTRAINT,
        }
    )


_CODE = re.compile(r"\bCode:\s*(\d+)")


def code_in(message: str) -> int | None:
    """The error code a ClickHouse message names ("Code: 117. DB::Exception: ..."), if any."""
    match = _CODE.search(message)
    return int(match.group(1)) if match else None


def engine_error(exc: BaseException, *, code: int | None, inserting: bool) -> DedupError:
    """The domain error for a failure of the engine: poison for refused rows, else unavailable."""
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if inserting and code in refused_rows():
        return PoisonEventError(f"clickhouse refused the rows: {first_line}")
    return BackendUnavailableError(BACKEND, first_line)
