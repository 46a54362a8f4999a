"""The complaint's reference through every door: each API path that takes a complaint id, and the
`kizuki case` and `kizuki erase` commands, on the running system."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import httpx
import pytest

from shared.reference import reference_of
from shared.timers import now
from tests.e2e.conftest import System, of, register, until_record

pytestmark = pytest.mark.e2e

ASSESSMENT = {"demand_valid": True, "means_appropriate": True, "impact_on_staff": False}


async def test_every_api_and_command_that_takes_a_complaint_id_takes_its_reference(
    system: System, http: httpx.AsyncClient
) -> None:
    complaint_id = await register(system, http)
    anonymous_id = await register(system, http, channel="staff_report", anonymous=True)
    await system.wait_for_flow([complaint_id])
    ref = reference_of(UUID(complaint_id)).lower()  # as a person might type it
    as_ = system.signed_in

    # intake
    complaint = await http.get(system.url("intake", f"/v1/complaints/{ref}"), headers=as_("n-001"))
    assert (complaint.status_code, complaint.json()["complaint_id"]) == (200, complaint_id)
    anonymous_ref = reference_of(UUID(anonymous_id))
    opened = await http.post(
        system.url("intake", f"/v1/complaints/{anonymous_ref}/reporter"),
        headers=as_("ps-001"),
        json={"reason": "the report needs the reporter's account"},
    )
    assert (opened.status_code, opened.json()["reporter"]) == (200, "n-001")

    # escalation: every action answers with the case of the complaint the reference names
    case = f"/v1/cases/{ref}"
    answers = [
        await http.get(system.url("escalation", case), headers=as_("n-001")),
        await http.post(
            system.url("escalation", f"{case}/duties/supervisor_acknowledgement/acknowledge"),
            headers=as_("sv-003"),
        ),
        await http.post(
            system.url("escalation", f"{case}/reports"),
            headers=as_("n-001"),
            json={"to": "ex-001", "text": "Pain medication three hours late on Ward 3."},
        ),
        await http.post(
            system.url("escalation", f"{case}/first-response"),
            headers=as_("hd-003"),
            json={"patient_reached": True},
        ),
        await http.post(system.url("escalation", f"{case}/patient-feedback"), headers=as_("hd-003")),
        await http.post(
            system.url("escalation", f"{case}/harassment-assessment"), headers=as_("sv-003"), json=ASSESSMENT
        ),
        await http.post(
            system.url("escalation", f"{case}/corrective-measure"),
            headers=as_("sv-003"),
            json={"measure": "A second nurse on the evening round.", "responsible": "sv-003"},
        ),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.json()["complaint_id"] == complaint_id
    closing = await http.post(system.url("escalation", f"{case}/close"), headers=as_("sv-003"))
    assert closing.status_code == 409  # the case was found: one reporting duty is still open
    assert "supervisor_report" in closing.text

    # followup, once it has the case: the callback the apology call scheduled
    await until_record(
        system, "the callback after the apology call", lambda r: of(r, complaint_id, "CallbackScheduled")
    )
    callbacks = await http.get(
        system.url("followup", f"/v1/complaints/{ref}/callbacks"), headers=as_("cb-001")
    )
    assert [callback["complaint_id"] for callback in callbacks.json()] == [complaint_id]
    discharge = await http.post(
        system.url("followup", f"/v1/complaints/{ref}/discharge-callback"),
        headers=as_("n-001"),
        json={"discharged_at": (now() - timedelta(minutes=1)).isoformat()},
    )
    assert discharge.status_code == 201, discharge.text
    assert discharge.json()["complaint_id"] == complaint_id

    # the commands
    shown = await system.kizuki("case", ref)
    assert shown.returncode == 0, shown.stderr
    assert f"Case {ref.upper()}  (complaint {complaint_id}" in shown.stdout
    assert "first_response               hd-003" in shown.stdout
    unknown = await system.kizuki("case", "ZZZZ-ZZZZ")
    assert (unknown.returncode, unknown.stderr.strip()) == (
        1,
        "kizuki: no complaint with reference ZZZZ-ZZZZ on the record",
    )
    erased = await system.kizuki("erase", ref, "--by", "dm-001")
    assert erased.returncode == 0, erased.stderr
    await until_record(system, "the erasure", lambda r: of(r, complaint_id, "ComplaintErased"))
    complaint = await http.get(system.url("intake", f"/v1/complaints/{complaint_id}"), headers=as_("n-001"))
    assert complaint.json()["summary"] is None
