"""RedisOutage: calls fail at once while Redis is away, a probe now and then, one line each way."""

from __future__ import annotations

import logging

import pytest
from dedup.adapters.metrics import record_batch
from dedup.adapters.outbound.redis_outage import RedisOutage
from dedup.domain.errors import BackendUnavailableError
from dedup.domain.outcome import BatchOutcome

from tests.scrape import value

DEGRADED = ("dedup_degraded", {"backend": "redis"})


class Redis:
    """A call that fails while `down`, counting how often it really reached Redis."""

    def __init__(self) -> None:
        self.down = False
        self.reached = 0

    def __call__(self) -> str:
        self.reached += 1
        if self.down:
            raise BackendUnavailableError("redis", "connection refused")
        return "answer"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_while_redis_is_away_it_is_asked_once_per_probe_interval_not_once_per_call() -> None:
    clock, redis = Clock(), Redis()
    outage = RedisOutage(probe_every=5, clock=clock)
    redis.down = True
    for _ in range(10):
        with pytest.raises(BackendUnavailableError):
            outage.call(redis)
    assert redis.reached == 1
    clock.now += 5
    with pytest.raises(BackendUnavailableError):
        outage.call(redis)
    assert redis.reached == 2  # the probe, which found it still away

    redis.down = False
    clock.now += 5
    assert outage.call(redis) == "answer"
    assert not outage.down
    assert [outage.call(redis) for _ in range(3)] == ["answer"] * 3
    assert redis.reached == 6


def test_going_away_and_coming_back_log_one_line_each_and_set_the_gauge(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, redis = Clock(), Redis()
    outage = RedisOutage(probe_every=1, clock=clock)
    redis.down = True
    with caplog.at_level(logging.WARNING, logger="dedup.adapters.outbound.redis_outage"):
        for _ in range(5):
            clock.now += 1
            with pytest.raises(BackendUnavailableError):
                outage.call(redis)
        assert value(*DEGRADED) == 1
        redis.down = False
        clock.now += 1
        outage.call(redis)
        outage.call(redis)
    assert value(*DEGRADED) == 0
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2, lines
    assert "degraded" in lines[0]
    assert "answers again after 5.0 s" in lines[1]


def test_a_batch_deduplicated_degraded_is_counted() -> None:
    before = value("dedup_batches_degraded_total")
    record_batch(BatchOutcome(outcomes={}, stored=(), duplicates=(), degraded=True), 0.01)
    record_batch(BatchOutcome(outcomes={}, stored=(), duplicates=()), 0.01)
    assert value("dedup_batches_degraded_total") - before == 1
