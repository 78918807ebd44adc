"""The metric declarations. Names, labels and buckets are an interface: docs/operations.md."""

from __future__ import annotations

import os

from attrs import frozen
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

# Events per batch or per message: the group commits aim at hundreds to thousands.
SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
# From a sub-millisecond publish confirm to a ClickHouse insert stalled by a merge.
SECONDS_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess() -> bool:
    """Whether metrics live in files shared by the processes of one service."""
    # The same test prometheus_client makes when it is first imported.
    return MULTIPROCESS_ENV in os.environ


@frozen
class Instruments:
    """Every metric this process records; one instance per process (adapters.metrics)."""

    registry: CollectorRegistry
    accepted_single: Counter
    accepted_batch: Counter
    accepted_tracking: Counter
    tracking_messages: Counter
    rejected: Counter
    stored: Counter
    duplicates: Counter
    processed: Counter
    batch_size: Histogram
    batch_seconds: Histogram
    degraded: Gauge
    degraded_batches: Counter
    retries: Counter
    dead_letters: Counter
    backend_waiting: Gauge
    publish_seconds: Histogram
    message_events: Histogram
    publish_failures: Counter
    insert_seconds: Histogram
    lookup_seconds: Histogram

    @classmethod
    def create(cls) -> Instruments:
        """Declare the metrics on a registry of their own (plus the process collectors)."""
        # `_created` series double the output, and multiprocess mode has none: same text both ways.
        disable_created_metrics()
        registry = CollectorRegistry()
        if not multiprocess():
            # In multiprocess mode they would describe only the process that answers a scrape.
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                registry.register(collector)
        accepted = Counter(
            "dedup_events_accepted",
            "Events answered 200 by the API (durably queued), by endpoint.",
            ["endpoint"],
            registry=registry,
        )
        return cls(
            registry=registry,
            accepted_single=accepted.labels(endpoint="single"),
            accepted_batch=accepted.labels(endpoint="batch"),
            accepted_tracking=accepted.labels(endpoint="tracking"),
            tracking_messages=Counter(
                "dedup_tracking_messages_accepted",
                "Tracking API (/v1/) messages answered 200, by source (write key name) and type"
                " (track, identify, page, screen, group, alias).",
                ["source", "type"],
                registry=registry,
            ),
            rejected=Counter(
                "dedup_requests_rejected",
                "Requests answered with an error, by its code (unauthorized, body_too_large...).",
                ["code"],
                registry=registry,
            ),
            stored=Counter(
                "dedup_events_stored",
                "Events inserted into the events table.",
                registry=registry,
            ),
            duplicates=Counter(
                "dedup_duplicates",
                "Duplicates recorded in event_duplicates, by kind (content, key_conflict).",
                ["kind"],
                registry=registry,
            ),
            processed=Counter(
                "dedup_events_processed",
                "Events deduplicated by the workers, by outcome (stored, already_stored,"
                " duplicate, already_recorded); the already_* ones are redeliveries.",
                ["outcome"],
                registry=registry,
            ),
            batch_size=Histogram(
                "dedup_batch_size",
                "Events per batch deduplicated by a worker.",
                buckets=SIZE_BUCKETS,
                registry=registry,
            ),
            batch_seconds=Histogram(
                "dedup_batch_seconds",
                "Time to deduplicate one batch: claim, lookup, insert.",
                buckets=SECONDS_BUCKETS,
                registry=registry,
            ),
            degraded=Gauge(
                "dedup_degraded",
                "1 while a worker goes on without a backend that is only a filter (redis):"
                " ClickHouse alone decides every fingerprint.",
                ["backend"],
                multiprocess_mode="max",
                registry=registry,
            ),
            degraded_batches=Counter(
                "dedup_batches_degraded",
                "Batches deduplicated while the cache or the stored filter failed.",
                registry=registry,
            ),
            retries=Counter(
                "dedup_retries",
                "Batches retried because a backend was unavailable.",
                registry=registry,
            ),
            dead_letters=Counter(
                "dedup_dead_letters",
                "Batches (messages) given up on and dead-lettered; see `dedup replay-dead`.",
                registry=registry,
            ),
            backend_waiting=Gauge(
                "dedup_backend_waiting",
                "1 while a worker waits out an unavailable backend (its breaker is open).",
                registry=registry,
                multiprocess_mode="max",
            ),
            publish_seconds=Histogram(
                "dedup_publish_seconds",
                "Time to publish one message to the broker and have it confirmed.",
                buckets=SECONDS_BUCKETS,
                registry=registry,
            ),
            message_events=Histogram(
                "dedup_message_events",
                "Events per published message (the API's group commit).",
                buckets=SIZE_BUCKETS,
                registry=registry,
            ),
            publish_failures=Counter(
                "dedup_publish_failures",
                "Messages the broker did not confirm; their requests were answered 503.",
                registry=registry,
            ),
            insert_seconds=Histogram(
                "dedup_insert_seconds",
                "Time to write one batch's new events and duplicates to ClickHouse.",
                buckets=SECONDS_BUCKETS,
                registry=registry,
            ),
            lookup_seconds=Histogram(
                "dedup_lookup_seconds",
                "Time to look one batch's fingerprints up in ClickHouse (event_fingerprints).",
                buckets=SECONDS_BUCKETS,
                registry=registry,
            ),
        )
