"""The worker's breaker: one shared schedule of attempts while a backend is away."""

from __future__ import annotations

import threading

import pytest
from attrs import define
from dedup.adapters.inbound.backend_breaker import BackendBreaker


@define
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


def a_breaker(clock: Clock, *, jitter: float = 1.0) -> BackendBreaker:
    return BackendBreaker(base_seconds=1.0, cap_seconds=8.0, clock=clock, jitter=lambda: jitter)


def test_a_first_failure_opens_it_and_the_threads_of_the_same_flush_do_not_move_it() -> None:
    clock = Clock()
    breaker = a_breaker(clock)
    assert breaker.failed() is True
    assert [breaker.failed() for _ in range(63)] == [False] * 63  # the rest of that flush
    assert breaker.is_open and breaker.opened == 1
    assert breaker.due_in() == 1.0


def test_each_failed_attempt_doubles_the_wait_up_to_the_cap() -> None:
    clock = Clock()
    breaker = a_breaker(clock)
    breaker.failed()
    waits = []
    for _ in range(6):
        waits.append(breaker.due_in())
        clock.now += breaker.due_in()  # the attempt, made when due, fails again
        breaker.failed()
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_jitter_shortens_a_wait_to_no_less_than_half() -> None:
    clock = Clock()
    breaker = a_breaker(clock, jitter=0.0)
    breaker.failed()
    assert breaker.due_in() == 0.5


def test_wait_returns_once_the_attempt_is_due_or_at_most_has_passed() -> None:
    breaker = BackendBreaker(base_seconds=0.05, cap_seconds=0.05)
    breaker.failed()
    breaker.wait(at_most=60)  # the attempt falls due well within 60 s
    assert breaker.due_in() == 0.0 and breaker.is_open
    breaker.failed()  # that attempt failed: the next is scheduled again
    assert breaker.due_in() > 0
    breaker.wait(at_most=0)  # told not to wait: back at once, still open
    assert breaker.is_open


def test_a_success_closes_it_and_wakes_every_waiting_thread() -> None:
    breaker = BackendBreaker(base_seconds=600.0, cap_seconds=600.0)
    breaker.failed()
    waiting = threading.Barrier(4, timeout=30)
    woken = threading.Barrier(4, timeout=30)

    def wait() -> None:
        waiting.wait()
        breaker.wait(at_most=1200)
        woken.wait()

    threads = [threading.Thread(target=wait) for _ in range(3)]
    for thread in threads:
        thread.start()
    waiting.wait()
    assert breaker.succeeded() is True
    woken.wait()  # all three came back long before their 600 s
    for thread in threads:
        thread.join()
    assert not breaker.is_open and breaker.due_in() == 0.0
    assert breaker.succeeded() is False  # closed already: nothing to report


def test_a_bad_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="cap_seconds"):
        BackendBreaker(base_seconds=2.0, cap_seconds=1.0)
