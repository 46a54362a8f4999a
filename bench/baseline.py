"""The limit of the bus with a Python client here: a bare three-hop chain, with nats-py alone and
with faststream subscribers configured as the services' consumers are (so the framework's own cost
is a measured ratio)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from faststream import AckPolicy as FaststreamAck
from faststream.nats import JStream, NatsBroker, PullSub
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

from bench.stats import embedded_nats, percentiles
from shared.bus import BATCH_SIZE, broker, connect
from shared.consumer import start_handing_what_is_there

CLIENTS = ("nats-py", "faststream")

HOPS = ("bench.a", "bench.b", "bench.c")


async def _declare_hop(js: JetStreamContext, source: str) -> str:
    durable = source.replace(".", "-")
    config = ConsumerConfig(
        durable_name=durable, ack_policy=AckPolicy.EXPLICIT, filter_subject=source, max_ack_pending=BATCH_SIZE
    )
    await js.add_consumer("BENCH", config)
    return durable


async def _pass_on(
    js: JetStreamContext, messages: list[Msg], target: str | None, arrived: dict[int, float]
) -> None:
    for message in messages:
        if target is None:
            arrived[json.loads(message.data)["n"]] = time.perf_counter()
        else:
            await js.publish(target, message.data)
        await message.ack()


async def _hop(js: JetStreamContext, source: str, target: str | None, arrived: dict[int, float]) -> None:
    durable = await _declare_hop(js, source)
    pull = await js.pull_subscribe_bind(durable=durable, stream="BENCH")
    while True:
        try:
            messages = await pull.fetch(BATCH_SIZE, timeout=1)
        except TimeoutError:  # nats-py raises its own or asyncio's, both TimeoutError
            continue
        await _pass_on(js, messages, target, arrived)


async def _faststream_hop(
    js: JetStreamContext, consumers: NatsBroker, source: str, target: str | None, arrived: dict[int, float]
) -> None:
    """As a service's ConsumerLoop subscribes: a batch subscriber bound to a declared consumer."""
    durable = await _declare_hop(js, source)
    subscriber = consumers.subscriber(
        source,
        stream=JStream("BENCH", declare=False),
        durable=durable,
        pull_sub=PullSub(batch_size=BATCH_SIZE, timeout=None, batch=True),
        ack_policy=FaststreamAck.MANUAL,
    )

    @subscriber
    async def passed_on(_: object) -> None:
        await _pass_on(js, consumers.context.get_local("message").raw_message, target, arrived)

    await consumers.connect()
    await start_handing_what_is_there(subscriber)
    try:
        await asyncio.Event().wait()
    finally:
        await subscriber.stop()


async def _send(
    js: JetStreamContext, count: int, rate: float | None, sent: dict[int, float], offset: int
) -> None:
    start = time.perf_counter()
    for n in range(offset, offset + count):
        if rate is not None:
            await asyncio.sleep(max(0.0, start + (n - offset) / rate - time.perf_counter()))
        sent[n] = time.perf_counter()
        await js.publish(HOPS[0], json.dumps({"n": n}).encode())


async def _until_arrived(arrived: dict[int, float], expected: int, within: float = 120.0) -> None:
    deadline = time.perf_counter() + within
    # Polls what the last hop fills in; an event per message would cost the chain it measures.
    while len(arrived) < expected and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


async def bus_baseline(
    client: str = "nats-py", rate: int = 100, seconds: float = 5.0, burst: int = 5000
) -> dict[str, Any]:
    """The chain's latency at ``rate`` and its most per second, with consumers of ``client``."""
    async with embedded_nats() as (url, _, _):
        nc = await connect(url, "bench-baseline")
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="BENCH", subjects=["bench.>"], storage=StorageType.FILE))
        sent: dict[int, float] = {}
        arrived: dict[int, float] = {}
        consumers = broker(url, "bench-baseline-faststream")
        pairs = zip(HOPS, [*HOPS[1:], None], strict=True)
        hops = [
            asyncio.create_task(
                _hop(js, source, target, arrived)
                if client == "nats-py"
                else _faststream_hop(js, consumers, source, target, arrived)
            )
            for source, target in pairs
        ]
        steady = int(rate * seconds)
        await _send(js, steady, rate, sent, 0)
        await _until_arrived(arrived, steady)
        latencies = [(arrived[n] - sent[n]) * 1000 for n in range(steady) if n in arrived]

        started = time.perf_counter()
        await _send(js, burst, None, sent, steady)
        await _until_arrived(arrived, steady + burst)
        elapsed = max(arrived[n] for n in range(steady, steady + burst) if n in arrived) - started
        for task in hops:
            task.cancel()
        await asyncio.gather(*hops, return_exceptions=True)
        if consumers._connection is not None:
            await consumers._connection.close()
        await nc.close()
    figures = percentiles(latencies)
    return {
        "client": client,
        "rate": rate,
        "p50_ms": figures["p50"],
        "p95_ms": figures["p95"],
        "p99_ms": figures["p99"],
        "max_per_second": burst / elapsed,
        "lost": steady + burst - len(arrived),
    }
