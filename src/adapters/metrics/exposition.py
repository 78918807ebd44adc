"""Scrapes: this process's metrics (or every process's, in multiprocess mode) as Prometheus text."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from dedup.adapters.metrics import DepthProbe
from dedup.adapters.metrics.instruments import Instruments, multiprocess
from dedup.domain.errors import BackendUnavailableError
from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger(__name__)


class QueueDepth:
    """dedup_queue_depth{queue}, asked of the queue at scrape time, never stored."""

    def __init__(self, probe: DepthProbe) -> None:
        self._probe = probe

    def describe(self) -> list[Metric]:
        return []  # registering it must not call the broker

    def collect(self) -> Iterator[Metric]:
        try:
            depths = self._probe()
        except BackendUnavailableError as exc:
            # The rest of the scrape still matters most when the broker is down.
            log.debug("queue depth unavailable: %s", exc)
            return
        family = GaugeMetricFamily(
            "dedup_queue_depth",
            "Waiting in the queue now: RabbitMQ counts ready messages, the embedded queue events.",
            labels=["queue"],
        )
        for queue, depth in depths.items():
            family.add_metric([queue], depth)
        yield family


class _Forward:
    """One registry's metrics inside another, collected afresh on every scrape."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()


def scrape_registry(instruments: Instruments, depth: DepthProbe | None = None) -> CollectorRegistry:
    """What a scrape shows: the files of every process, or this process's registry; and depth."""
    registry = CollectorRegistry()
    if multiprocess():
        MultiProcessCollector(registry)
    else:
        registry.register(_Forward(instruments.registry))
    if depth is not None:
        registry.register(QueueDepth(depth))
    return registry


def sample_total(instruments: Instruments, name: str) -> float:
    """The sum of every sample called `name` (all its labels) that a scrape would show."""
    registry = scrape_registry(instruments)
    return sum(s.value for metric in registry.collect() for s in metric.samples if s.name == name)


def render(instruments: Instruments, depth: DepthProbe | None = None) -> bytes:
    """The Prometheus text format, version 0.0.4."""
    return generate_latest(scrape_registry(instruments, depth))


def serve(instruments: Instruments, port: int, addr: str) -> tuple[WSGIServer, threading.Thread]:
    """An HTTP server on a daemon thread answering GET /metrics (any path, in fact)."""
    server, thread = start_http_server(port, addr, registry=scrape_registry(instruments))
    return server, thread
