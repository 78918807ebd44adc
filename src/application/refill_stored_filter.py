"""Bring the stored-fingerprint filter back after Redis lost it, from ClickHouse, the truth."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from attrs import frozen
from dedup.application.ports import FilterGap, FilterRefill, FingerprintHistory

log = logging.getLogger(__name__)


@frozen
class RefillStoredFilter:
    """Refill every filter in use that cannot answer; return the ones now complete.

    Until a filter is complete, the worker looks every fingerprint up in ClickHouse, as if
    there were no filter: slower, never wrong. `settle` must be longer than an insert can
    take, so an insert whose filter bits were lost is in ClickHouse when the refill reads it
    (the argument is in docs/stored-filter.md). Safe to run anywhere, any number of times:
    a lock lets one process refill a filter at a time.
    """

    refill: FilterRefill
    history: FingerprintHistory
    settle: timedelta
    sleep: Callable[[float], None] = time.sleep

    def execute(self) -> list[FilterGap]:
        started = [gap for gap in self.refill.gaps() if self.refill.begin(gap)]
        if not started:
            return []
        log.info("refilling %s after %s", ", ".join(g.name for g in started), self.settle)
        self.sleep(self.settle.total_seconds())
        done = []
        for gap in started:
            if self.refill.finish(gap, self.history.received_since(gap.since)):
                done.append(gap)
                log.info("filter %s refilled: it answers again", gap.name)
            else:
                log.warning("filter %s was lost while refilling; the next run retries", gap.name)
        return done
