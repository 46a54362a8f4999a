"""The operators' status page in the console, on a running system: each service's health, its relay and
consumers, what was set aside (listed for administrators), the last verification, and who may see it."""

from __future__ import annotations

import re

import httpx
import pytest

from kizuki.processes import stop
from shared.settings import SERVICES
from tests.e2e.conftest import System, register, until_record
from tests.e2e.test_console_browser import set_password
from tests.e2e.test_console_forms import console_of
from tests.e2e.test_console_sign_in import csrf_of

pytestmark = pytest.mark.e2e


def consumer_cell(page: str, consumer: str, cell: str) -> str:
    found = re.search(rf'data-consumer="{consumer}">.*?class="{cell}">([^<]*)<', page, re.DOTALL)
    assert found is not None, consumer
    return found.group(1)


async def test_operators_see_each_service_its_backlog_what_was_set_aside_and_the_last_verification(
    system: System, http: httpx.AsyncClient
) -> None:
    for staff_id in ("q-001", "au-001", "dm-001", "n-001"):
        set_password(system, staff_id)
    await register(system, http)
    async with console_of(system, "au-001") as auditor:
        record = await auditor.get("/record")
        assert (await auditor.post("/record/verify", data={"csrf": csrf_of(record)})).status_code == 303
    assert system.nc is not None
    await system.nc.jetstream().publish("events.intake.ComplaintReceived", b"not an event")
    await until_record(
        system,
        "escalation setting the bad message aside",
        lambda r: [
            e for e in r if e.event_type == "MessageRejected" and e.body["rejected_by"] == "escalation"
        ],
    )

    async with console_of(system, "q-001") as quality:
        page = await quality.get("/status")
        assert page.status_code == 200, page.text
        assert 'href="/status"' in page.text
        for service in SERVICES:
            assert f'data-service="{service}"' in page.text
        assert page.text.count('data-health="ok"') == len(SERVICES)
        verification = page.text[page.text.index('id="verification"') :]
        assert '<dd class="holds">' in verification
        assert consumer_cell(page.text, "escalation on EVENTS", "set-aside") == "1"
        assert consumer_cell(page.text, "escalation on EVENTS", "pending").isdigit()
        assert 'id="set-aside"' not in page.text  # the messages themselves are for administrators

        # `kizuki audit verify` against the server is the last verification now: the stray message fails it.
        verified = await system.kizuki("audit", "verify")
        assert verified.returncode != 0
        page = await quality.get("/status")
        verification = page.text[page.text.index('id="verification"') :]
        assert '<dd class="fails">' in verification

        stop(system.services["followup"])
        page = await quality.get("/status")
        assert 'data-health="not-answering"' in page.text
        assert page.text.count('data-health="ok"') == len(SERVICES) - 1

    async with console_of(system, "dm-001") as administrator:
        page = await administrator.get("/status")
        listed = page.text[page.text.index('id="set-aside"') :]
        assert "events.intake.ComplaintReceived" in listed
        assert "not a valid message" in listed

    async with console_of(system, "n-001") as nurse:
        assert (await nurse.get("/status")).status_code == 403
        assert 'href="/status"' not in (await nurse.get("/")).text
