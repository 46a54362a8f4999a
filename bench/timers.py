"""Many pending timers: how late the server fires them, and the memory it holds for them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from nats.js.api import AckPolicy, ConsumerConfig

from bench.stats import embedded_nats, percentiles, resident_mib
from shared.bus import connect, due_subject, schedule_subject, timer_stream, timer_stream_config
from shared.timers import Timer

SPREAD_SECONDS = 5


async def pending_timers(count: int) -> dict[str, Any]:
    async with embedded_nats() as (url, server, _):
        nc = await connect(url, "bench-timers")
        js = nc.jetstream()
        await js.add_stream(timer_stream_config("bench"))
        await js.add_consumer(
            timer_stream("bench"),
            ConsumerConfig(
                durable_name="bench", ack_policy=AckPolicy.EXPLICIT, filter_subject=due_subject("bench", ">")
            ),
        )
        memory_before = resident_mib(server.pid)
        # Due after all are set: publishing takes about a second per few thousand.
        first_due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5 + count // 2000)
        for n in range(count):
            timer = Timer(
                rule="bench",
                aggregate_id=uuid4(),
                attempt=1,
                due_at=first_due + timedelta(seconds=n % SPREAD_SECONDS),
            )
            await js.publish(
                schedule_subject("bench", timer.key),
                timer.encode(),
                headers={
                    "Nats-Schedule": timer.schedule,
                    "Nats-Schedule-Target": due_subject("bench", timer.key),
                },
            )
        memory_pending = resident_mib(server.pid)
        set_by = datetime.now(UTC)

        pull = await js.pull_subscribe_bind(durable="bench", stream=timer_stream("bench"))
        lateness: list[float] = []
        deadline = time.monotonic() + SPREAD_SECONDS + 60 + count // 2000
        while len(lateness) < count and time.monotonic() < deadline:
            try:
                messages = await pull.fetch(500, timeout=1)
            except TimeoutError:  # nats-py raises its own or asyncio's, both TimeoutError
                continue
            arrived = datetime.now(UTC)
            for message in messages:
                fired = Timer.decode(message.data)
                lateness.append((arrived - fired.due_at).total_seconds() * 1000)
                await message.ack()
        await nc.close()
    figures = percentiles(lateness)
    return {
        "count": count,
        "fired": len(lateness),
        "all_set_before_first_due": set_by < first_due,
        "late_p50_ms": figures["p50"],
        "late_p99_ms": figures["p99"],
        "server_memory_mib": memory_pending - memory_before,
    }
