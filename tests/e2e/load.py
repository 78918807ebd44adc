"""Load for the fault tests: distinct events, each sent as 2-3 concurrent copies, until "ok".

Copies of one event are sent at the same moment, so they travel on different connections (an
HTTP/1.1 connection carries one request at a time) and race through the pipeline. A copy that
gets a 503 or a connection error is sent again with the same payload — a new request, so a new
event_id — until it is answered "ok" or the deadline passes; only "ok" answers count.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections import Counter
from uuid import UUID

import httpx
from attrs import define, field


@define
class Load:
    """`events` distinct events at about `rate` events/s, each in 2..max_copies copies."""

    base_url: str
    events: int
    rate: float = 500.0
    max_copies: int = 3
    connections: int = 48
    deadline_seconds: float = 180.0
    spread_seconds: float = 0.0  # copies of one event start up to this far apart
    run: str = field(factory=lambda: uuid.uuid4().hex[:8])
    ok_ids: set[UUID] = field(factory=set)
    answers: Counter[str] = field(factory=Counter)
    refused_at: list[float] = field(factory=list)  # time.monotonic() of every 503
    copies_sent: int = 0
    _thread: threading.Thread | None = None
    _error: BaseException | None = None

    def payload(self, n: int) -> dict[str, object]:
        return {"action": "fault-test", "run": self.run, "n": n, "page": f"/p/{n % 97}"}

    def start(self) -> Load:
        """Run in a background thread, so the test can break things meanwhile."""
        self._thread = threading.Thread(target=self._main, name="load", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> Load:
        assert self._thread is not None
        self._thread.join(timeout if timeout is not None else self.deadline_seconds + 30)
        if self._thread.is_alive():
            raise AssertionError(f"the load did not finish: {dict(self.answers)}")
        if self._error is not None:
            raise self._error
        return self

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def _main(self) -> None:
        try:
            asyncio.run(self._drive())
        except BaseException as exc:
            self._error = exc

    async def _drive(self) -> None:
        limits = httpx.Limits(
            max_connections=self.connections, max_keepalive_connections=self.connections
        )
        # Every copy of every event in flight has a connection of its own.
        gate = asyncio.Semaphore(max(1, self.connections // self.max_copies))
        deadline = time.monotonic() + self.deadline_seconds
        async with httpx.AsyncClient(base_url=self.base_url, limits=limits, timeout=10) as client:
            started = time.monotonic()
            tasks = []
            for n in range(self.events):
                # Spread the events over time, so the faults happen under load.
                delay = started + n / self.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await gate.acquire()
                task = asyncio.create_task(self._event(client, n, deadline))
                task.add_done_callback(lambda _t: gate.release())
                tasks.append(task)
            await asyncio.gather(*tasks)

    async def _event(self, client: httpx.AsyncClient, n: int, deadline: float) -> None:
        payload = self.payload(n)
        copies = random.randint(2, self.max_copies)
        self.copies_sent += copies
        await asyncio.gather(*(self._copy(client, payload, deadline) for _ in range(copies)))

    async def _copy(
        self, client: httpx.AsyncClient, payload: dict[str, object], deadline: float
    ) -> None:
        if self.spread_seconds:
            await asyncio.sleep(random.uniform(0, self.spread_seconds))
        pause = 0.1
        while True:
            try:
                response = await client.post("/service-event/", json=payload)
                self.answers[str(response.status_code)] += 1
                if response.status_code == 200:
                    self.ok_ids.add(UUID(response.json()["event_id"]))
                    return
                if response.status_code == 503:
                    self.refused_at.append(time.monotonic())
                else:
                    raise AssertionError(
                        f"unexpected answer {response.status_code}: {response.text}"
                    )
            except httpx.TransportError as exc:
                self.answers[type(exc).__name__] += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"no ok before the deadline: {dict(self.answers)}")
            await asyncio.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, 2.0)
