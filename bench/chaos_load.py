"""The chaos run's steady load and its watch on the services: complaints posted at a fixed rate as a
call centre posts them (each with its idempotency key, tried again while intake does not answer), and
every service's /ready probed twice a second."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.end_to_end import complaint

# A call centre tries a complaint again, with the same key, for this long before giving up on it.
RETRY_SECONDS = 60.0
RETRY_PAUSE = 0.5
READY_EVERY = 0.5


@dataclass
class Call:
    """One complaint posted: when it came in, and what intake answered in the end."""

    key: str
    sent_at: float  # wall clock (the record's times are wall clock too)
    body: dict[str, Any] = field(repr=False, default_factory=dict)  # the same at every try
    complaint_id: str | None = None
    accepted_at: float | None = None
    status: int = 0  # the last answer's status; 0: no answer (connection refused, reset, timed out)
    tries: int = 0


async def post(client: httpx.AsyncClient, url: str, call: Call) -> None:
    deadline = time.monotonic() + RETRY_SECONDS
    while True:
        call.tries += 1
        try:
            response = await client.post(url, json=call.body, headers={"Idempotency-Key": call.key})
            call.status = response.status_code
        except httpx.TransportError:
            call.status = 0
        if call.status == 201:
            call.complaint_id = str(response.json()["complaint_id"])
            call.accepted_at = time.time()
            return
        if (call.status and call.status < 500 and call.status != 429) or time.monotonic() > deadline:
            return  # refused for good, or given up
        await asyncio.sleep(RETRY_PAUSE)


async def steady(
    client: httpx.AsyncClient, url: str, label: str, rate: float, stopping: asyncio.Event
) -> list[Call]:
    """Complaints at ``rate`` a second (open loop: a slow answer does not slow the arrivals) until
    ``stopping`` is set; returns once every call has its answer."""
    calls: list[Call] = []
    tasks = []
    start = time.perf_counter()
    n = 0
    while not stopping.is_set():
        await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        key = f"{label}-{n}"
        call = Call(key, time.time(), complaint(key))
        calls.append(call)
        tasks.append(asyncio.create_task(post(client, url, call)))
        n += 1
    await asyncio.gather(*tasks)
    return calls


@dataclass
class Readiness:
    """Every probe of every service's /ready: (wall time, the services that did not answer 200)."""

    probes: list[tuple[float, list[str]]] = field(default_factory=list)

    async def watch(self, client: httpx.AsyncClient, urls: dict[str, str], stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            moment = time.time()
            answers = await asyncio.gather(*(self._ready(client, url) for url in urls.values()))
            self.probes.append((moment, [name for name, ok in zip(urls, answers, strict=True) if not ok]))
            await asyncio.sleep(READY_EVERY)

    @staticmethod
    async def _ready(client: httpx.AsyncClient, url: str) -> bool:
        try:
            return (await client.get(url + "/ready", timeout=2)).status_code == 200
        except httpx.TransportError:
            return False

    def ready_again(self, since: float, until: float) -> float | None:
        """Seconds from ``since`` to the first probe after the last failing one before ``until``: 0 when
        no probe failed, None when the services were still not all ready at ``until`` (the last
        fault's window runs on to the last probe, once the system is drained)."""
        window = [(moment, failing) for moment, failing in self.probes if since <= moment < until]
        failed = [index for index, (_, failing) in enumerate(window) if failing]
        if not failed:
            return 0.0
        if failed[-1] + 1 >= len(window):
            return None
        return window[failed[-1] + 1][0] - since
