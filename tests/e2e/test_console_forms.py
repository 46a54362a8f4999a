"""Every duty of a case done through the console's plain forms, as a browser without script posts
them, and the case closed: each step lands on the record as the person who signed in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from services.console.refusals import not_answering
from tests.e2e.conftest import System, of, register, until_record
from tests.e2e.test_console_browser import set_password
from tests.e2e.test_console_sign_in import sign_in
from tests.polling import eventually

pytestmark = pytest.mark.e2e


@asynccontextmanager
async def console_of(system: System, staff_id: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=system.url("console", ""), timeout=10) as console:
        assert (await sign_in(console, staff_id)).status_code == 303
        yield console


async def page_showing(console: httpx.AsyncClient, path: str, *texts: str) -> httpx.Response:
    """The console's page once it shows all of ``texts``: the console reads the record a moment
    behind it (a fifth of a second when the record is quiet), so a page asked for the instant an
    event is on the record may not show it yet."""

    async def page() -> httpx.Response | None:
        answer = await console.get(path)
        return answer if answer.status_code == 200 and all(text in answer.text for text in texts) else None

    shown = await eventually(page, what=f"{texts} on {path}")
    assert shown is not None  # eventually returns only what is truthy
    return shown


async def post_form(
    console: httpx.AsyncClient, complaint_id: str, action: str, **fields: str
) -> httpx.Response:
    """The form as the case page has it, with its CSRF token."""
    page = await page_showing(console, f"/cases/{complaint_id}", f'action="/cases/{complaint_id}/{action}"')
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    return await console.post(f"/cases/{complaint_id}/{action}", data={"csrf": csrf.group(1), **fields})


async def test_a_case_is_carried_to_its_close_through_the_console_forms(system: System) -> None:
    for staff_id in ("n-001", "sv-003", "hd-003"):
        set_password(system, staff_id)
    async with httpx.AsyncClient(timeout=10) as http:
        complaint_id = await register(system, http)
    async with (
        console_of(system, "n-001") as nurse,
        console_of(system, "sv-003") as supervisor,
        console_of(system, "hd-003") as handler,
    ):
        await until_record(
            system, "the case's duties", lambda r: len(of(r, complaint_id, "DutyAssigned")) == 5
        )
        steps = [
            (supervisor, "acknowledge", {"duty": "supervisor_acknowledgement"}),
            (supervisor, "report", {"to": "ex-001", "text": "Ward 3: a patient waited three hours."}),
            (nurse, "report", {"to": "ex-002", "text": "Pain medication three hours late."}),
            (
                handler,
                "first-response",
                {"patient_reached": "yes", "notes": "Apologised; facts confirmed."},
            ),
            (handler, "feedback", {}),
            (
                supervisor,
                "corrective-measure",
                {"measure": "Round at 22:00 checks drips.", "responsible": "sv-003"},
            ),
        ]
        for person, action, fields in steps:
            done = await post_form(person, complaint_id, action, **fields)
            assert done.status_code == 303, done.text
        closed = await post_form(supervisor, complaint_id, "close")
        assert closed.status_code == 303, closed.text

    record = await until_record(system, "the case closed", lambda r: of(r, complaint_id, "CaseClosed"))
    tracks = {(body["track"], body["by"], body["to"]) for body in of(record, complaint_id, "ReportFiled")}
    assert tracks == {("supervisor_report", "sv-003", "ex-001"), ("first_hearer_report", "n-001", "ex-002")}
    [response] = of(record, complaint_id, "FirstResponseRecorded")
    assert (response["by"], response["patient_reached"]) == ("hd-003", True)
    fulfilled = {body["duty"]: body["by"] for body in of(record, complaint_id, "DutyFulfilled")}
    assert fulfilled["patient_feedback"] == "hd-003"
    assert of(record, complaint_id, "CaseClosed")[0]["by"] == "sv-003"
    [measure] = of(record, complaint_id, "CorrectiveMeasureRecorded")
    assert (measure["by"], measure["responsible"]) == ("sv-003", "sv-003")


async def test_a_service_that_does_not_answer_is_named_on_the_page(system: System) -> None:
    set_password(system, "sv-003")
    async with httpx.AsyncClient(timeout=10) as http:
        complaint_id = await register(system, http)
    await until_record(system, "the case's duties", lambda r: len(of(r, complaint_id, "DutyAssigned")) == 5)
    async with console_of(system, "sv-003") as supervisor:
        page = await page_showing(
            supervisor, f"/cases/{complaint_id}", f'action="/cases/{complaint_id}/acknowledge"'
        )
        system.kill("escalation")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "duty": "supervisor_acknowledgement"}
        answer = await supervisor.post(f"/cases/{complaint_id}/acknowledge", data=form)
    assert answer.status_code == 503
    assert not_answering("escalation").said("ja") in answer.text  # in her language (the default)


async def test_callback_staff_find_their_callback_in_my_work_and_record_the_outcome(system: System) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        complaint_id = await register(system, http)
        await until_record(system, "the apology call duty", lambda r: of(r, complaint_id, "DutyAssigned"))
        handler = system.signed_in("hd-003")
        call = {"patient_reached": True, "notes": "Apologised."}
        answer = await http.post(
            system.url("escalation", f"/v1/cases/{complaint_id}/first-response"), json=call, headers=handler
        )
        assert answer.status_code == 200, answer.text
    # Followup takes an outcome only once the callback is due (2 s after the call in this policy).
    record = await until_record(system, "the callback due", lambda r: of(r, complaint_id, "CallbackDue"))
    [scheduled] = of(record, complaint_id, "CallbackScheduled")
    caller = scheduled["assignee"]
    set_password(system, caller)
    async with console_of(system, caller) as console:
        work = await page_showing(console, "/", f'data-complaint="{complaint_id}" data-duty="callback"')
        csrf = re.search(r'name="csrf" value="([^"]+)"', work.text)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "satisfaction": "4", "resolved": "yes", "comments": "Much better now."}
        done = await console.post(
            f"/cases/{complaint_id}/callbacks/{scheduled['callback_id']}/outcome", data=form
        )
        assert done.status_code == 303, done.text
    record = await until_record(system, "the outcome", lambda r: of(r, complaint_id, "CallbackCompleted"))
    [completed] = of(record, complaint_id, "CallbackCompleted")
    assert (completed["by"], completed["satisfaction"], completed["resolved"]) == (caller, 4, True)


async def test_harassment_is_judged_on_its_three_criteria_through_the_console(system: System) -> None:
    set_password(system, "sv-003")
    async with httpx.AsyncClient(timeout=10) as http:
        complaint_id = await register(system, http)
    await until_record(system, "the case's duties", lambda r: len(of(r, complaint_id, "DutyAssigned")) == 5)
    async with console_of(system, "sv-003") as supervisor:
        # An invalid demand by inappropriate means that harms the staff: only the third box is ticked.
        done = await post_form(supervisor, complaint_id, "harassment-assessment", impact_on_staff="yes")
        assert done.status_code == 303, done.text
    record = await until_record(system, "the assessment", lambda r: of(r, complaint_id, "HarassmentAssessed"))
    [assessed] = of(record, complaint_id, "HarassmentAssessed")
    criteria = (assessed["demand_valid"], assessed["means_appropriate"], assessed["impact_on_staff"])
    assert (assessed["by"], criteria, assessed["is_harassment"]) == ("sv-003", (False, False, True), True)
