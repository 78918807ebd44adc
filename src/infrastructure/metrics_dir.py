"""Multiprocess metrics: the directory where a service's processes share their counters."""

from __future__ import annotations

import os
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir(default: Path) -> Path:
    """Make this process and the children it starts record metrics into one directory.

    PROMETHEUS_MULTIPROC_DIR wins when the operator set it (then emptying it between runs is
    theirs to do, e.g. a tmpfs); otherwise `default` is created, emptied of the last run's
    files and exported. Call it before the first metric is recorded and before any fork.
    """
    given = os.environ.get(ENV, "").strip()
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        return directory
    directory = default.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    # Files of dead processes would be summed into the new run's counters.
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    os.environ[ENV] = str(directory)
    return directory


def metrics_dir_of(data_dir: Path, role: str) -> Path:
    """The default directory of one service on this data directory, e.g. serve-8000."""
    return data_dir / "prometheus" / role
