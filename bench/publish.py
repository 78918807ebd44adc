"""`make bench-publish`: confirmed publishes per second and CPU per message, two AMQP clients.

    python -m bench.publish [--seconds 5] [--rounds 3] [--events-per-message 33] [--in-flight 8]
                            [--requests 64] [--variants aiormq,aio-pika,queue] [--broker-url ...]

The API's publishing pattern, on a queue of the run's own: persistent Celery task messages of
--events-per-message events, --in-flight of them awaiting their confirm at once, each publisher
sending its next message as soon as its confirm came (what GroupCommitter does under load).

- `aiormq`: dedup's ConfirmedChannel, the hand-written confirmed channel CeleryQueue uses;
- `aio-pika`: aio-pika's RobustConnection / RobustChannel (confirms on), Exchange.publish of an
  aio_pika.Message with the same body and properties: the code that would replace it;
- `queue`: CeleryQueue.put() end to end, --requests concurrent callers putting one event each
  (group commit, message building and the channel): the whole publisher as the API drives it.

Variants take turns, round after round, in one process, so a shared machine's load falls on
all of them alike; the median round is reported. CPU is this process's (user + system, every
thread), so it is the publisher's own cost; the broker's CPU is reported beside it, from
beam.smp, which other users of a shared RabbitMQ also load. The queue is purged after each
round and deleted, with its dead-letter queue and exchanges, at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import psutil
from attrs import frozen
from celery import Celery
from dedup.adapters.outbound.celery_queue import CeleryQueue, aiormq_url
from dedup.adapters.outbound.celery_task_message import CeleryTaskMessages, TaskMessage
from dedup.adapters.outbound.confirmed_channel import ConfirmedChannel
from dedup.adapters.outbound.dead_letters import dead_letter_queue_of, events_queue_of
from dedup.domain.event import Event
from dedup.infrastructure.celery_app import create_celery_app
from dedup.infrastructure.ids import new_event_id
from kombu import Queue as KombuQueue

from bench.measure import service_pids
from bench.report import write_json

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("aiormq", "aio-pika", "queue")
# Distinct messages to cycle through: the broker sees different bodies and ids, the client
# builds none of them while it is timed (the queue variant builds its own, as put() does).
POOL = 64

Publish = Callable[[TaskMessage], Awaitable[None]]


@frozen
class Round:
    variant: str
    messages: int
    events: int
    wall_s: float
    cpu_s: float
    broker_cpu_s: float

    def figures(self) -> dict[str, float]:
        return {
            "messages_per_s": self.messages / self.wall_s,
            "events_per_s": self.events / self.wall_s,
            "cpu_us_per_message": 1e6 * self.cpu_s / self.messages,
            "cpu_us_per_event": 1e6 * self.cpu_s / self.events,
            "broker_cpu_us_per_message": 1e6 * self.broker_cpu_s / self.messages,
            "cores": self.cpu_s / self.wall_s,
        }


class BrokerCpu:
    """CPU seconds RabbitMQ's beam.smp processes used so far (0 when they cannot be read)."""

    def __init__(self) -> None:
        self._processes = [psutil.Process(pid) for pid in service_pids()["rabbitmq"]]

    def seconds(self) -> float:
        total = 0.0
        for process in self._processes:
            try:
                times = process.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            total += times.user + times.system
        return total


async def timed(
    variant: str, work: Callable[[float], Awaitable[tuple[int, int]]], *, seconds: float
) -> Round:
    """Run work(deadline) and count what it did against this process's and the broker's CPU."""
    broker = BrokerCpu()
    loop = asyncio.get_running_loop()
    cpu, wall, broker_cpu = time.process_time(), time.perf_counter(), broker.seconds()
    messages, events = await work(loop.time() + seconds)
    return Round(
        variant,
        messages,
        events,
        wall_s=time.perf_counter() - wall,
        cpu_s=time.process_time() - cpu,
        broker_cpu_s=broker.seconds() - broker_cpu,
    )


def an_event(n: int) -> Event:
    """The n-th click of the load: a fresh id, a payload of its own."""
    return Event.accept(
        {"action": "click", "n": n},
        event_id=new_event_id(),
        received_at=datetime.now(UTC).replace(microsecond=0),
        source="bench",
        ignore=frozenset(),
    )


def publishers(
    publish: Publish, pool: list[TaskMessage], args: argparse.Namespace
) -> Callable[[float], Awaitable[tuple[int, int]]]:
    """in_flight loops, each publishing its next message once the last one was confirmed."""

    async def work(deadline: float) -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        in_flight = args.in_flight
        counts = [0] * in_flight

        async def one(slot: int) -> None:
            while loop.time() < deadline:
                await publish(pool[(slot + counts[slot] * in_flight) % len(pool)])
                counts[slot] += 1

        await asyncio.gather(*(one(slot) for slot in range(in_flight)))
        sent = sum(counts)
        return sent, sent * args.events_per_message

    return work


async def aiormq_round(app: Celery, pool: list[TaskMessage], args: argparse.Namespace) -> Round:
    events = events_queue_of(app)
    channel = ConfirmedChannel(
        aiormq_url(app), declare=(events, dead_letter_queue_of(events)), timeout=10.0
    )

    async def publish(message: TaskMessage) -> None:
        await channel.publish(
            message.body,
            exchange=message.exchange,
            routing_key=message.routing_key,
            properties=message.properties,
        )

    try:
        await publish(pool[0])  # connected and declared before the clock starts
        work = publishers(publish, pool, args)
        return await timed("aiormq", work, seconds=args.seconds)
    finally:
        await channel.aclose()


async def aio_pika_round(app: Celery, pool: list[TaskMessage], args: argparse.Namespace) -> Round:
    events = events_queue_of(app)
    connection = await aio_pika.connect_robust(str(aiormq_url(app)), timeout=10.0)
    try:
        channel = await connection.channel(publisher_confirms=True)
        # Declared through the robust channel, so a reconnect declares them again.
        for queue in (events, dead_letter_queue_of(events)):
            await declare_with_aio_pika(channel, queue)
        exchange = (
            channel.default_exchange
            if not pool[0].exchange
            else await channel.get_exchange(pool[0].exchange, ensure=False)
        )

        async def publish(message: TaskMessage) -> None:
            p = message.properties
            await exchange.publish(
                aio_pika.Message(
                    message.body,
                    headers=p.headers,
                    content_type=p.content_type,
                    content_encoding=p.content_encoding,
                    delivery_mode=aio_pika.DeliveryMode(p.delivery_mode),
                    priority=p.priority,
                    correlation_id=p.correlation_id,
                    reply_to=p.reply_to,
                    message_id=p.message_id,
                ),
                routing_key=message.routing_key,
                mandatory=False,  # as CeleryQueue and send_task publish
            )

        await publish(pool[0])
        work = publishers(publish, pool, args)
        return await timed("aio-pika", work, seconds=args.seconds)
    finally:
        await connection.close()


async def declare_with_aio_pika(channel: aio_pika.abc.AbstractChannel, queue: KombuQueue) -> None:
    exchange = await channel.declare_exchange(
        queue.exchange.name, type=queue.exchange.type, durable=queue.exchange.durable
    )
    declared = await channel.declare_queue(
        queue.name, durable=queue.durable, arguments=queue.queue_arguments
    )
    await declared.bind(exchange, routing_key=queue.routing_key)


async def queue_round(app: Celery, args: argparse.Namespace) -> Round:
    queue = CeleryQueue(app, timeout_seconds=10.0)
    pool = [an_event(n) for n in range(args.requests * 4)]

    async def work(deadline: float) -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        before = (queue.stats.batches, queue.stats.items)

        async def caller(slot: int) -> None:
            n = slot
            while loop.time() < deadline:
                await queue.put([pool[n % len(pool)]])
                n += args.requests

        await asyncio.gather(*(caller(slot) for slot in range(args.requests)))
        return queue.stats.batches - before[0], queue.stats.items - before[1]

    try:
        await queue.put([pool[0]])
        return await timed("queue", work, seconds=args.seconds)
    finally:
        await queue.aclose()


def message_pool(app: Celery, events_per_message: int) -> list[TaskMessage]:
    messages = CeleryTaskMessages.to(events_queue_of(app), app=app, task_name="events.deduplicate")
    return [
        messages.of([an_event(m * events_per_message + n) for n in range(events_per_message)])
        for m in range(POOL)
    ]


def purge(app: Celery) -> None:
    with app.connection_for_write() as connection:
        channel = connection.channel()
        channel.queue_purge(app.conf.task_default_queue)
        connection.maybe_close_channel(channel)


def delete_topology(app: Celery) -> None:
    events = events_queue_of(app)
    dead = dead_letter_queue_of(events)
    with app.connection_for_write() as connection:
        channel = connection.channel()
        for queue in (events, dead):
            channel.queue_delete(queue.name)
            channel.exchange_delete(queue.exchange.name)
        connection.maybe_close_channel(channel)


async def run(app: Celery, args: argparse.Namespace) -> list[Round]:
    pool = message_pool(app, args.events_per_message)
    rounds: list[Round] = []
    for number in range(1, args.rounds + 1):
        for variant in args.variants:
            if variant == "aiormq":
                done = await aiormq_round(app, pool, args)
            elif variant == "aio-pika":
                done = await aio_pika_round(app, pool, args)
            else:
                done = await queue_round(app, args)
            purge(app)
            rounds.append(done)
            figures = done.figures()
            say(
                f"round {number} {variant:>8}: {figures['messages_per_s']:8,.0f} msg/s"
                f"  {figures['cpu_us_per_message']:6,.0f} us CPU/msg"
                f"  ({figures['events_per_s']:8,.0f} events/s,"
                f" broker {figures['broker_cpu_us_per_message']:5,.0f} us/msg)"
            )
    return rounds


def summary(rounds: list[Round], variants: list[str]) -> dict[str, dict[str, Any]]:
    """Per variant, the median of each figure over its rounds, and every round's figures."""
    result: dict[str, dict[str, Any]] = {}
    for variant in variants:
        mine = [r.figures() for r in rounds if r.variant == variant]
        result[variant] = {
            "median": {key: statistics.median(f[key] for f in mine) for key in mine[0]},
            "spread": {
                key: [min(f[key] for f in mine), max(f[key] for f in mine)] for key in mine[0]
            },
            "rounds": mine,
        }
    return result


def print_table(document: dict[str, Any]) -> None:
    print()
    print(
        f"{'variant':>9} {'msg/s':>9} {'CPU us/msg':>11} {'events/s':>10} {'CPU us/event':>13}"
        f" {'broker us/msg':>14} {'cores':>6}   msg/s min-max"
    )
    for variant, result in document["variants"].items():
        m, spread = result["median"], result["spread"]["messages_per_s"]
        print(
            f"{variant:>9} {m['messages_per_s']:9,.0f} {m['cpu_us_per_message']:11,.0f}"
            f" {m['events_per_s']:10,.0f} {m['cpu_us_per_event']:13,.1f}"
            f" {m['broker_cpu_us_per_message']:14,.0f} {m['cores']:6.2f}"
            f"   {spread[0]:,.0f}-{spread[1]:,.0f}"
        )
    base, other = document["variants"].get("aiormq"), document["variants"].get("aio-pika")
    if base and other:
        rate = other["median"]["messages_per_s"] / base["median"]["messages_per_s"]
        cpu = other["median"]["cpu_us_per_message"] / base["median"]["cpu_us_per_message"]
        print(f"\naio-pika / aiormq: {rate:.2f}x the rate, {cpu:.2f}x the CPU per message")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.publish", description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=5.0, help="length of one round (5)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per variant (3)")
    p.add_argument("--events-per-message", type=int, default=33, help="events per message (33)")
    p.add_argument("--in-flight", type=int, default=8, help="messages awaiting confirms (8)")
    p.add_argument("--requests", type=int, default=64, help="concurrent put()s, queue (64)")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma list, in turn order")
    p.add_argument("--broker-url", default="amqp://guest:guest@127.0.0.1:5672//")
    p.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    return p


def say(text: str) -> None:
    print(f"[bench-publish] {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    from bench.run import git, machine

    args = parser().parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if unknown := set(args.variants) - set(VARIANTS):
        raise SystemExit(f"unknown variants {sorted(unknown)}; choose from {VARIANTS}")
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    tag = f"bench.publish.{stamp.lower()}{secrets.token_hex(2)}"
    app = create_celery_app(
        args.broker_url,
        queue_name=f"{tag}.events",
        dead_letter_queue=f"{tag}.dead",
        dead_letter_exchange=f"{tag}.dlx",
    )
    say(f"queue {tag}.events; {args.rounds} rounds of {args.seconds:g}s: {args.variants}")
    try:
        rounds = asyncio.run(run(app, args))
    finally:
        delete_topology(app)
    document: dict[str, Any] = {
        "started_at": started_at.isoformat(),
        "command": ["python", "-m", "bench.publish", *(argv if argv is not None else sys.argv[1:])],
        "git": git(),
        "machine": {**machine(), "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
        "versions": {name: version_of(name) for name in ("aiormq", "aio-pika", "pamqp", "celery")},
        "settings": {
            "seconds": args.seconds,
            "rounds": args.rounds,
            "events_per_message": args.events_per_message,
            "in_flight": args.in_flight,
            "requests": args.requests,
            "message_bytes": len(message_pool(app, args.events_per_message)[0].body),
        },
        "variants": summary(rounds, args.variants),
    }
    path = write_json(document, args.results_dir, stamp, latest=True, prefix="publish-")
    print_table(document)
    print(f"\nreport: {path}")
    return 0


def version_of(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    sys.exit(main())
