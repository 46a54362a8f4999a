"""The console at scale: "My work" with 10,000 open cases in its read model, and how soon a page shows
an event after it is on the record (through the real stream of server-sent events).

A nats-server and the console alone: the cases are published straight onto the record, as escalation
would publish them, and the console folds them like any other events.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
from nats.js import JetStreamContext

from bench.stats import percentiles
from kizuki.permissions import ADMINISTRATOR
from kizuki.processes import free_port, start_nats, start_service, stop, wait_healthy
from kizuki.provision import provision_bus, provision_secrets
from kizuki.server_config import write_server_config
from shared.bus import connect
from shared.directory import load_directory
from shared.events import ComplaintReceived, DutyAssigned, WireEvent, encode_event, headers_for
from shared.passwords import set_password
from shared.reference import reference_of
from shared.settings import load_settings
from shared.timers import now

PASSWORD = "bench-console-password"
# Who is measured: a nurse (her own reports), a supervisor (her ward), an executive (in every chain).
PEOPLE = ("n-001", "sv-003", "ex-001")
HEARD = (("n-001", "Ward 3", "sv-003", "hd-003"), ("n-002", "Outpatients", "sv-010", "hd-010"))
DUTIES = ("supervisor_acknowledgement", "supervisor_report", "first_hearer_report", "first_response")
REQUESTS = 200
CHANGES = 30


def case_events(complaint_id: UUID, n: int, due_in: timedelta) -> list[WireEvent]:
    heard_by, department, supervisor, handler = HEARD[n % 2]
    moment = now()
    common: dict[str, Any] = {"complaint_id": complaint_id, "occurred_at": moment, "recorded_at": moment}
    owners = {"first_hearer_report": heard_by, "first_response": handler}
    received = ComplaintReceived(
        **common, event_id=uuid4(), channel="phone", heard_by=heard_by, department=department,
        patient_data="sealed", tier="minor", language="ja",
    )  # fmt: skip
    duties = [
        DutyAssigned(
            **common,
            event_id=uuid4(),
            duty=duty,
            owner=owners.get(duty, supervisor),
            due_at=moment + due_in + timedelta(seconds=n),
            late_on_arrival=False,
        )
        for duty in DUTIES
    ]
    return [received, *duties]


async def publish(js: JetStreamContext, events: list[WireEvent]) -> None:
    for start in range(0, len(events), 500):
        batch = events[start : start + 500]
        await asyncio.gather(
            *(js.publish(e.subject, encode_event(e), headers=headers_for(e, str(e.event_id))) for e in batch)
        )


async def signed_in(base: str, staff_id: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=30)
    form = await client.get("/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None, form.text
    answer = await client.post("/sign-in", data={"staff_id": staff_id, "password": PASSWORD, "csrf": csrf[1]})
    assert answer.status_code == 303, answer.text
    return client


def work_count(page: str) -> int:
    """Items shown plus those counted as "more" on a "My work" page."""
    more = re.search(r'class="more">\D*(\d+)', page)
    return page.count('class="item') + (int(more[1]) if more else 0)


async def loaded(client: httpx.AsyncClient, expected: int, within: float) -> float:
    """Seconds until the executive's "My work" counts every item published."""
    started = time.perf_counter()
    while work_count((await client.get("/")).text) < expected:
        if time.perf_counter() - started > within:
            raise SystemExit(f"the console did not fold {expected} items within {within:.0f} s")
        await asyncio.sleep(1)
    return time.perf_counter() - started


async def work_times(client: httpx.AsyncClient) -> dict[str, dict[str, float]]:
    """Each "My work" request: the server's own time (its ``Server-Timing``), and as timed by the
    client on loopback (the server's, the transport's and the client's own)."""
    server, loopback = [], []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        page = await client.get("/")
        loopback.append((time.perf_counter() - started) * 1000)
        assert page.status_code == 200
        timing = re.fullmatch(r"work;dur=([0-9.]+)", page.headers.get("server-timing", ""))
        assert timing is not None, page.headers
        server.append(float(timing[1]))
    return {"server": percentiles(server), "loopback": percentiles(loopback)}


async def change_delays(js: JetStreamContext, client: httpx.AsyncClient) -> dict[str, float]:
    """A new case for the supervisor published on the record, then her page fetched on each
    server-sent event until it shows the case: from the publish to that page."""
    delays = []
    async with client.stream("GET", "/events") as events:
        lines = events.aiter_lines()
        for n in range(CHANGES):
            complaint_id = uuid4()
            started = time.perf_counter()
            # Due before every other case, so that it is on the first page of "My work".
            await publish(js, case_events(complaint_id, 0, timedelta(days=-1 - n)))
            async with asyncio.timeout(30):
                shown = False
                while not shown:
                    if (await anext(lines)).startswith("data:"):
                        shown = reference_of(complaint_id) in (await client.get("/")).text
            delays.append((time.perf_counter() - started) * 1000)
    return percentiles(delays)


async def console_at_scale(root: Path, cases: int = 10_000) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("KIZUKI_", "NATS_"))}
    env |= {"KIZUKI_DATA_DIR": str(root / "var"), "KIZUKI_NATS_PORT": str(free_port())}
    env |= {"KIZUKI_CONSOLE_PORT": str(free_port())}
    settings = load_settings(env)
    provision_secrets(settings)
    nats = start_nats(settings.nats_port, settings.nats_dir, root / "nats.log", write_server_config(settings))
    console: subprocess.Popen[bytes] | None = None
    clients: list[httpx.AsyncClient] = []
    try:
        administrator = settings.bus_user(ADMINISTRATOR)
        await provision_bus(settings.bus_url, administrator)
        directory = load_directory(settings.directory_path)
        for staff_id in PEOPLE:
            set_password(settings.console_passwords, staff_id, PASSWORD, directory)
        nc = await connect(settings.bus_url, "bench-console", user=administrator)
        js = nc.jetstream()
        published = time.perf_counter()
        for first in range(0, cases, 1000):
            batch = [
                e
                for n in range(first, min(first + 1000, cases))
                for e in case_events(uuid4(), n, timedelta(hours=2))
            ]
            await publish(js, batch)
        published = time.perf_counter() - published
        console = start_service("console", env, root / "console.log")
        base = settings.http_url("console")
        await asyncio.to_thread(wait_healthy, base, console)
        clients = [await signed_in(base, staff_id) for staff_id in PEOPLE]
        folded = await loaded(clients[-1], cases * len(DUTIES), within=1800)
        results: dict[str, Any] = {
            "open_cases": cases,
            "published_seconds": round(published, 1),
            "folded_seconds": round(folded, 1),
            "my_work_ms": {
                staff_id: await work_times(client) for staff_id, client in zip(PEOPLE, clients, strict=True)
            },
            "event_to_page_ms": await change_delays(js, clients[1]),
        }
        await nc.close()
        return results
    finally:
        for client in clients:
            await client.aclose()
        if console is not None:
            stop(console)
        stop(nats)


def console_table(figures: dict[str, Any]) -> list[str]:
    lines = [
        f"console: {figures['open_cases']} open cases folded in {figures['folded_seconds']:.0f} s; "
        '"My work" in ms (goal: server p99 <= 50):'
    ]
    for staff_id, times in figures["my_work_ms"].items():
        server, loopback = times["server"], times["loopback"]
        lines.append(
            f"  {staff_id:<8} server p50 {server['p50']:>6.1f}  p99 {server['p99']:>6.1f}   "
            f"on loopback p50 {loopback['p50']:>6.1f}  p99 {loopback['p99']:>6.1f}"
        )
    delay = figures["event_to_page_ms"]
    lines.append(
        f"  from an event on the record to the page showing it (SSE): p50 {delay['p50']:.0f} ms, "
        f"p99 {delay['p99']:.0f} ms (goal <= 1000)"
    )
    return lines
