"""The console's second slice, through the running system: a case by its reference, filters that
survive going to a case and back, only the forms a person may use (the service still refusing the
rest), the patient's data only for those intake gives it to, and the callbacks page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from services.console.refusals import refused as refused_by
from shared.directory import load_directory
from shared.reference import reference_of
from shared.settings import SERVICES
from tests.e2e.conftest import System, of, register, until_record, write_policy
from tests.e2e.test_console_browser import set_password
from tests.e2e.test_console_forms import console_of, page_showing

pytestmark = pytest.mark.e2e

SUMMARY = "Waited three hours for pain medication."  # as conftest.complaint registers it


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def forms_of(page: httpx.Response, complaint_id: str) -> set[str]:
    """The actions of the case's forms on the page."""
    return set(re.findall(rf'action="/cases/{complaint_id}/([a-z-]+)"', page.text))


async def test_a_case_by_its_reference_with_filters_kept_and_only_the_forms_allowed(system: System) -> None:
    for staff_id in ("n-001", "sv-003", "au-001"):
        set_password(system, staff_id)
    async with httpx.AsyncClient(timeout=10) as http:
        complaint_id = await register(system, http)
    reference = reference_of(UUID(complaint_id))
    await until_record(system, "the case's duties", lambda r: len(of(r, complaint_id, "DutyAssigned")) == 5)
    async with console_of(system, "sv-003") as supervisor:
        await page_showing(supervisor, "/", f'href="/cases/{reference}"')
        by_reference = await page_showing(
            supervisor,
            f"/cases/{reference.lower().replace('-', '')}",  # as typed
            f'<code id="reference">{reference}</code>',
            f'action="/cases/{complaint_id}/acknowledge"',  # the case's duties read too
            f'action="/cases/{complaint_id}/report"',
        )
        assert SUMMARY in by_reference.text  # the supervisor is in the first hearer's chain: intake gives it
        assert forms_of(by_reference, complaint_id) >= {
            "acknowledge",
            "report",
            "close",
            "harassment-assessment",
        }

        elsewhere = await supervisor.get("/", params={"filter": "yes", "department": "Outpatients"})
        assert complaint_id not in elsewhere.text
        await supervisor.get(f"/cases/{complaint_id}")
        back = await supervisor.get("/")  # the link home carries no filter: the session keeps it
        assert complaint_id not in back.text
        assert "selected>Outpatients</option>" in back.text
        cleared = await supervisor.get("/", params={"filter": "yes"})
        assert complaint_id in cleared.text
        # One case is one page: the second is empty, and a page that is no number is said to be so.
        assert complaint_id not in (await supervisor.get("/", params={"page": "2"})).text
        for wrong in ("0", "two", "9" * 5000):
            refused = await supervisor.get("/", params={"page": wrong})
            assert refused.status_code == 400
            assert "page is a whole number" in refused.text

    async with console_of(system, "n-001") as nurse:
        page = await nurse.get(f"/cases/{complaint_id}")
        assert forms_of(page, complaint_id) == {"report"}  # her own report, nothing else
        refused = await nurse.post(f"/cases/{complaint_id}/close", data={"csrf": csrf_of(page)})
        assert refused.status_code == 403  # escalation still refuses what is not offered
        assert 'class="refusal"' in refused.text

    async with console_of(system, "au-001") as auditor:
        page = await auditor.get(f"/cases/{complaint_id}")
        assert page.status_code == 200
        assert forms_of(page, complaint_id) == set()  # auditors read everything and write nothing
    record = await system.record()
    assert not of(record, complaint_id, "CaseClosed")


@pytest.fixture
async def slow_callbacks(tmp_path: Path) -> AsyncIterator[System]:
    """Callbacks due an hour after the apology call: long after the test has tried to record one."""
    policy = write_policy(tmp_path / "policy.toml", followup={"after_first_response_seconds": 3600})
    system = System(tmp_path, policy, services=SERVICES)
    try:
        await system.start()
        yield system
    finally:
        await system.stop()


async def test_callback_staff_see_their_callbacks_and_followups_refusal_before_one_is_due(
    slow_callbacks: System,
) -> None:
    system = slow_callbacks
    async with httpx.AsyncClient(timeout=10) as http:
        complaint_id = await register(system, http)
        await until_record(system, "the apology call duty", lambda r: of(r, complaint_id, "DutyAssigned"))
        call = {"patient_reached": True, "notes": "Apologised."}
        answer = await http.post(
            system.url("escalation", f"/v1/cases/{complaint_id}/first-response"),
            json=call,
            headers=system.signed_in("hd-003"),
        )
        assert answer.status_code == 200, answer.text
    record = await until_record(system, "the callback", lambda r: of(r, complaint_id, "CallbackScheduled"))
    [scheduled] = of(record, complaint_id, "CallbackScheduled")
    caller = scheduled["assignee"]
    set_password(system, caller)
    async with console_of(system, caller) as console:
        page = await page_showing(console, "/callbacks", f'data-callback="{scheduled["callback_id"]}"')
        assert reference_of(UUID(complaint_id)) in page.text
        form = {"csrf": csrf_of(page), "satisfaction": "5", "next": "/callbacks"}
        path = f"/cases/{complaint_id}/callbacks/{scheduled['callback_id']}/outcome"
        refused = await console.post(path, data=form)
        assert refused.status_code == 409, refused.text
        language = load_directory(system.settings.directory_path).staff[caller].language
        not_due = refused_by("followup", 409, {"detail": "the callback is not due yet"})
        assert not_due.said(language) in refused.text  # followup's refusal in their language
        assert 'id="callbacks"' in refused.text

        case = await console.get(f"/cases/{complaint_id}")
        assert case.status_code == 200  # the callback's staff see the case...
        assert 'id="patient"' not in case.text  # ...but intake refuses them the patient's data
        assert SUMMARY not in case.text
    record = await system.record()
    assert not of(record, complaint_id, "CallbackCompleted")
