"""Find the events of a message that can never be stored, storing all the others meanwhile."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from dedup.domain.errors import PoisonEventError

T = TypeVar("T")


def store_around_poison(
    store: Callable[[list[T]], None], items: Sequence[T]
) -> tuple[list[T], PoisonEventError | None]:
    """Store every item that can be, by halves; return those refused and a refusal's error.

    A refusal that names no event (ClickHouse says which block, not which row) is narrowed
    down by storing halves: about 2·log2(n) stores for one poison among n. A half that was
    stored is not stored again, so no good item is held back by the poison beside it.
    """
    try:
        store(list(items))
    except PoisonEventError as exc:
        if len(items) == 1:
            return list(items), exc
        middle = len(items) // 2
        left, left_error = store_around_poison(store, items[:middle])
        right, right_error = store_around_poison(store, items[middle:])
        return left + right, left_error or right_error
    return [], None
