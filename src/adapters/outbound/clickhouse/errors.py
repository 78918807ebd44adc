"""What a ClickHouse failure means: the engine away (wait for it) or rows it refuses (poison).

Only an INSERT can be refused for its rows, and only for the codes below: errors about the
data itself, which the same rows meet on every try. Everything else — the network, "too many
parts", the memory limit, a read-only replica, a missing table before a migration, codes we
do not know — is the engine being unavailable for now: waited out, never a dead letter.
"""

from __future__ import annotations

import re

from dedup.adapters.outbound.clickhouse.executor import BACKEND
from dedup.domain.errors import BackendUnavailableError, DedupError, PoisonEventError

# ClickHouse's error codes (src/Common/ErrorCodes.cpp) about the rows an INSERT carries.
REFUSED_ROWS = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        469,  # VIOLATED_CONSTRAINT (a CHECK the rows fail)
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
    if inserting and code in REFUSED_ROWS:
        return PoisonEventError(f"clickhouse refused the rows: {first_line}")
    return BackendUnavailableError(BACKEND, first_line)
