"""A daemon thread that runs a loop until asked to stop: the schedulers of one process."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod


class Background(ABC):
    """start() runs loop(stopping) on a daemon thread; stop() sets `stopping` and waits."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def loop(self, stopping: threading.Event) -> None:
        """Work until `stopping` is set; wait on it, never sleep, so stop() is prompt."""

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.loop, args=(self._stopping,), name=self._name, daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to stop and wait for it, at most `timeout` seconds."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
