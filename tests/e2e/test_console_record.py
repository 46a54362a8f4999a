"""The console's read model: from the record, through a crash of the console, past a bad message;
and its live stream when it stops."""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest

from tests.e2e.conftest import System, register, until_record
from tests.e2e.test_console_browser import set_password
from tests.e2e.test_console_forms import page_showing
from tests.e2e.test_console_sign_in import sign_in
from tests.polling import eventually

pytestmark = pytest.mark.e2e


async def test_the_read_model_survives_a_crash_of_the_console_and_catches_up(system: System) -> None:
    set_password(system, "sv-003")
    async with httpx.AsyncClient(timeout=10) as http:
        before = await register(system, http)
        system.kill("console")
        during = await register(system, http)  # recorded while the console is down
        await system.restart("console")
    async with httpx.AsyncClient(base_url=system.url("console", ""), timeout=10) as console:
        assert (await sign_in(console, "sv-003")).status_code == 303
        await page_showing(console, "/", before, during)

        async def with_its_duties() -> httpx.Response | None:
            case = await console.get(f"/cases/{before}")
            return case if case.text.count('data-duty="') == 5 else None

        case = await eventually(with_its_duties, what="the case with its five duties")
        assert case is not None  # eventually returns only what is truthy
        assert case.text.count("案件開始") == 1  # "Case opened", once: nothing was folded twice


async def test_a_message_the_console_cannot_read_is_recorded_and_set_aside(system: System) -> None:
    set_password(system, "sv-003")
    assert system.nc is not None
    js = system.nc.jetstream()
    await js.publish("events.notifier.NotificationSent", b"not an event")
    record = await until_record(
        system,
        "the console's rejection",
        lambda r: [e for e in r if e.event_type == "MessageRejected" and e.body["rejected_by"] == "console"],
    )
    [rejected] = [
        e.body for e in record if e.event_type == "MessageRejected" and e.body["rejected_by"] == "console"
    ]
    assert rejected["message_subject"] == "events.notifier.NotificationSent"
    assert "not a valid message" in rejected["reason"]
    async with httpx.AsyncClient(timeout=10) as http:
        after = await register(system, http)  # the messages behind it go on
    async with httpx.AsyncClient(base_url=system.url("console", ""), timeout=10) as console:
        assert (await sign_in(console, "sv-003")).status_code == 303
        await page_showing(console, "/", after)


async def test_an_open_page_does_not_hold_the_console_when_it_stops(system: System) -> None:
    """Its live stream is ended, cleanly, as the console stops, instead of being cut off after the
    server's grace period."""
    set_password(system, "sv-003")
    async with httpx.AsyncClient(base_url=system.url("console", ""), timeout=30) as console:
        assert (await sign_in(console, "sv-003")).status_code == 303
        async with console.stream("GET", "/events") as live:
            assert live.headers["content-type"].startswith("text/event-stream")
            lines = live.aiter_lines()
            assert await anext(lines) == "retry: 1000"
            system.services["console"].send_signal(signal.SIGTERM)
            rest = [line async for line in lines]  # ends without a protocol error
    assert all(line == "" or line.startswith(("data:", ":")) for line in rest)
    await asyncio.to_thread(system.services["console"].wait, 30)
