"""dedup's Prometheus metrics: adapters record through these functions, a scrape renders them.

One set of instruments per process, created on first use. prometheus_client decides between
in-memory and multiprocess (file) storage when it is first imported, from
PROMETHEUS_MULTIPROC_DIR, so this module imports it only then: a process may set that variable
after importing the adapters (`dedup worker` does, before it forks its children).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from dedup.domain.outcome import BatchOutcome, Outcome

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from dedup.adapters.metrics.instruments import Instruments

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

DepthProbe = Callable[[], Mapping[str, int]]
"""Messages or events waiting now, by queue role ("events", "dead_letters"); may block."""

_lock = threading.Lock()
_created: list[Instruments] = []


def process_instruments() -> Instruments:
    """This process's instruments, created by the first caller."""
    if _created:
        return _created[0]
    with _lock:  # two threads recording their first value must not declare everything twice
        if not _created:
            from dedup.adapters.metrics.instruments import Instruments

            _created.append(Instruments.create())
    return _created[0]


def record_accepted(events: int, *, batch: bool) -> None:
    """The API answered 200 for these events (POST /service-event/ or /batch)."""
    found = process_instruments()
    (found.accepted_batch if batch else found.accepted_single).inc(events)


def record_tracked(types: Sequence[str], *, source: str) -> None:
    """The API answered 200 for Tracking API messages of these types from `source`."""
    found = process_instruments()
    found.accepted_tracking.inc(len(types))
    for kind, count in Counter(types).items():
        found.tracking_messages.labels(source=source, type=kind).inc(count)


def accepted_total() -> int:
    """Events answered 200 since the service started (every API process's, in multiprocess mode)."""
    from dedup.adapters.metrics.exposition import sample_total

    return int(sample_total(process_instruments(), "dedup_events_accepted_total"))


def record_rejected(code: str) -> None:
    """The API answered a request with the error `code`."""
    process_instruments().rejected.labels(code=code).inc()


def record_publish(seconds: float, *, events: int) -> None:
    """One message of `events` events was published and confirmed in `seconds`."""
    found = process_instruments()
    found.publish_seconds.observe(seconds)
    found.message_events.observe(events)


def record_publish_failure() -> None:
    process_instruments().publish_failures.inc()


def record_batch(outcome: BatchOutcome, seconds: float) -> None:
    """A worker deduplicated one batch in `seconds` (DeduplicateEvent.execute returned)."""
    found = process_instruments()
    found.batch_size.observe(len(outcome.outcomes))
    if outcome.degraded:
        found.degraded_batches.inc()
    found.batch_seconds.observe(seconds)
    if outcome.stored:
        found.stored.inc(len(outcome.stored))
    for duplicate in outcome.duplicates:
        found.duplicates.labels(kind=duplicate.kind.value).inc()
    counts = dict.fromkeys(Outcome, 0)
    for value in outcome.outcomes.values():
        counts[value] += 1
    for value, count in counts.items():
        if count:
            found.processed.labels(outcome=value.value).inc(count)


def record_degraded(backend: str, *, degraded: bool) -> None:
    """This process went on without `backend` (a filter such as Redis), or has it back."""
    process_instruments().degraded.labels(backend=backend).set(1 if degraded else 0)


def record_retry() -> None:
    """A batch failed on an unavailable backend and will be tried again."""
    process_instruments().retries.inc()


def record_backend_waiting(waiting: bool) -> None:
    """A worker began (True) or stopped (False) waiting out an unavailable backend."""
    process_instruments().backend_waiting.set(1 if waiting else 0)


def record_dead_letter() -> None:
    """A batch (a message) was given up on and dead-lettered."""
    process_instruments().dead_letters.inc()


def record_insert(seconds: float) -> None:
    """EventRepository.save wrote one batch in `seconds`."""
    process_instruments().insert_seconds.observe(seconds)


def record_lookup(seconds: float) -> None:
    """EventRepository.owners looked one batch's fingerprints up in `seconds`."""
    process_instruments().lookup_seconds.observe(seconds)


def render(depth: DepthProbe | None = None) -> bytes:
    """A scrape in Prometheus text (CONTENT_TYPE); `depth` is asked for dedup_queue_depth."""
    from dedup.adapters.metrics.exposition import render as render_text

    return render_text(process_instruments(), depth)


def start_worker_metrics_server(port: int, *, addr: str = "0.0.0.0") -> WSGIServer:
    """Serve the worker's metrics on `port` from a daemon thread; call before forking children.

    With several worker processes, PROMETHEUS_MULTIPROC_DIR must be set before this call (see
    infrastructure.metrics_dir), so the server sums what every child recorded.
    """
    from dedup.adapters.metrics.exposition import serve

    server, _thread = serve(process_instruments(), port, addr)
    return server
