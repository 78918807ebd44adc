"""BatchGatherer: the worker's group commit over plain threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from attrs import Factory, define
from dedup.adapters.inbound.batch_gatherer import BatchGatherer
from dedup.domain.errors import BackendUnavailableError, PoisonEventError

from tests.waiting import wait_until


@define
class Recorder:
    """A flush that records its batches and when each started; may fail or block on demand."""

    batches: list[list[int]] = Factory(list)
    starts: list[float] = Factory(list)
    fail_with: Callable[[list[int]], Exception | None] = lambda _batch: None
    gate: threading.Event = Factory(threading.Event)
    entered: threading.Event = Factory(threading.Event)  # a flush has started

    def __attrs_post_init__(self) -> None:
        self.gate.set()

    def __call__(self, batch: list[int]) -> None:
        self.starts.append(time.monotonic())
        self.entered.set()
        self.gate.wait()
        error = self.fail_with(batch)
        if error is not None:
            raise error
        self.batches.append(batch)


@pytest.fixture
def flush() -> Recorder:
    return Recorder()


@pytest.fixture
def make(flush: Recorder) -> Iterator[Callable[..., BatchGatherer[int]]]:
    made: list[BatchGatherer[int]] = []

    def build(**options: float) -> BatchGatherer[int]:
        gatherer: BatchGatherer[int] = BatchGatherer(flush, **options)  # type: ignore[arg-type]
        made.append(gatherer)
        return gatherer

    yield build
    flush.gate.set()
    for gatherer in made:
        gatherer.close(timeout=5)


def stored(flush: Recorder) -> list[int]:
    return sorted(item for batch in flush.batches for item in batch)


def submit_all(gatherer: BatchGatherer[int], batches: list[list[int]]) -> list[Exception | None]:
    """Submit each batch from its own thread at once; return what each submit raised."""
    results: list[Exception | None] = [None] * len(batches)
    start = threading.Barrier(len(batches))

    def run(index: int) -> None:
        start.wait()
        try:
            gatherer.submit(batches[index])
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_a_lone_submission_on_an_idle_gatherer_is_flushed_at_once(make, flush) -> None:
    # Paced like a busy one, it would wait an hour: the submit would raise after 30 s.
    gatherer = make(min_interval_seconds=3600, timeout_seconds=30)
    gatherer.submit([1, 2])
    assert flush.batches == [[1, 2]]


def test_concurrent_submissions_share_a_flush_and_flushes_keep_their_distance(make, flush) -> None:
    gatherer = make(min_interval_seconds=0.1)
    for round_ in range(5):
        assert submit_all(gatherer, [[round_ * 100 + i] for i in range(40)]) == [None] * 40

    assert sum(len(batch) for batch in flush.batches) == 200
    assert len(flush.batches) < 40  # far fewer flushes than submissions
    gaps = [later - earlier for earlier, later in zip(flush.starts, flush.starts[1:], strict=False)]
    assert min(gaps) >= 0.1 * 0.95


def test_a_batch_holds_at_most_max_items_but_never_splits_a_submission(make, flush) -> None:
    flush.gate.clear()  # the first flush blocks, so the rest piles up behind it in order
    gatherer = make(max_items=5, min_interval_seconds=0)
    threads = []
    for waiting, items in enumerate(([0], [1, 2, 3], [4, 5, 6], [7], [8, 9, 10, 11, 12, 13])):
        threads.append(threading.Thread(target=gatherer.submit, args=(items,)))
        threads[-1].start()
        if waiting == 0:
            assert flush.entered.wait(5)  # taken by the first flush
        else:
            wait_until(
                lambda waiting=waiting: gatherer.waiting() == waiting,
                timeout=5,
                interval=0.001,
                what=f"{waiting} submissions waiting",
            )
    flush.gate.set()
    for thread in threads:
        thread.join(5)

    assert flush.batches == [[0], [1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11, 12, 13]]


def test_a_backend_failure_reaches_every_submitter_of_the_batch_as_unavailable(make, flush) -> None:
    flush.fail_with = lambda _batch: BackendUnavailableError("clickhouse", "down")
    gatherer = make(min_interval_seconds=0.05)

    results = submit_all(gatherer, [[i] for i in range(10)])

    assert all(isinstance(error, BackendUnavailableError) for error in results)
    assert {error.backend for error in results} == {"clickhouse"}  # type: ignore[union-attr]
    assert len({id(error) for error in results}) == 10  # each thread raises its own object
    assert flush.batches == []


def test_a_poison_event_fails_only_its_submission_and_the_rest_of_its_batch_is_stored(
    make, flush
) -> None:
    flush.fail_with = lambda batch: (
        PoisonEventError("refused", event_ids={13}) if 13 in batch else None  # type: ignore[arg-type]
    )
    gatherer = make(min_interval_seconds=0.05, event_id=lambda n: n)

    results = submit_all(gatherer, [[i, i + 100] for i in range(10, 20)])

    assert isinstance(results[3], PoisonEventError)  # its task dead-letters just this message
    assert results[:3] + results[4:] == [None] * 9
    assert stored(flush) == sorted(j for i in range(10, 20) if i != 13 for j in (i, i + 100))


def test_a_bug_reaches_as_itself_only_the_submission_that_fails_alone(make, flush) -> None:
    flush.fail_with = lambda batch: KeyError("a bug") if 13 in batch else None
    gatherer = make(min_interval_seconds=0.05)

    results = submit_all(gatherer, [[i] for i in range(10, 20)])

    assert isinstance(results[3], KeyError)  # never mistaken for an outage
    assert results[:3] + results[4:] == [None] * 9
    assert stored(flush) == [i for i in range(10, 20) if i != 13]


def test_a_submission_not_flushed_in_time_raises_for_a_retry_and_is_withdrawn(make, flush) -> None:
    flush.gate.clear()
    gatherer = make(min_interval_seconds=0, timeout_seconds=0.3)
    stuck = threading.Thread(target=submit_all, args=(gatherer, [[1]]))  # taken, then stuck
    stuck.start()
    assert flush.entered.wait(5)

    with pytest.raises(BackendUnavailableError, match="not flushed within"):
        gatherer.submit([2])
    flush.gate.set()
    stuck.join(5)
    gatherer.close(timeout=5)  # flushes whatever is still pending

    assert flush.batches == [[1]]  # [2] was withdrawn before any flush took it


def test_a_closed_gatherer_refuses_new_work(make, flush) -> None:
    gatherer = make()
    gatherer.submit([1])
    gatherer.close(timeout=5)
    with pytest.raises(BackendUnavailableError, match="closed"):
        gatherer.submit([2])
    assert flush.batches == [[1]]


def test_an_empty_submission_returns_at_once_without_a_flush(make, flush) -> None:
    make().submit([])
    assert flush.batches == []
