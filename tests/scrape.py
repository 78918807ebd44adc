"""Read this process's metrics as a scrape would: the tests' one reader of Prometheus text."""

from __future__ import annotations

from collections.abc import Mapping

from dedup.adapters.metrics import render
from prometheus_client.parser import text_string_to_metric_families

Labels = Mapping[str, str]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape by (name, labels); the parser refuses malformed text."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, frozenset(sample.labels.items())] = sample.value
    return found


def value(name: str, labels: Labels | None = None, *, text: str | None = None) -> float:
    """One sample of a scrape (this process's, unless text is given); absent counts as 0."""
    scraped = samples(text if text is not None else render().decode())
    return scraped.get((name, frozenset((labels or {}).items())), 0.0)
