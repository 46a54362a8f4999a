"""Callback visits (回访) with a policy of seconds, on the real services and NATS: the patient's leg."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from kizuki.audit import RecordEntry
from shared.bus import timer_stream
from shared.timers import now
from tests.at_rest import store_holds
from tests.e2e.conftest import FOLLOWUP_SECONDS, System, alerts_of, of, register, until_record, write_policy
from tests.polling import eventually

# `beside`: mostly waits on timers.
pytestmark = [pytest.mark.e2e, pytest.mark.beside]

OFFSET = timedelta(seconds=FOLLOWUP_SECONDS["after_first_response_seconds"])
CLOSURE_OFFSET = timedelta(seconds=FOLLOWUP_SECONDS["after_closure_seconds"])
RETRY = timedelta(seconds=FOLLOWUP_SECONDS["retry_interval_seconds"])
CALLBACK_STAFF = ("cb-001", "cb-002")


@contextlib.asynccontextmanager
async def running(tmp_path: Path, **followup: int) -> AsyncIterator[System]:
    policy = write_policy(tmp_path / "policy.toml", version="callbacks-1", followup=followup)
    system = System(tmp_path, policy)
    try:
        await system.start()
        yield system
    finally:
        await system.stop()


@pytest.fixture
async def callbacks(tmp_path: Path) -> AsyncIterator[System]:
    async with running(tmp_path) as system:
        yield system


def at(body: dict[str, Any], field: str = "occurred_at") -> datetime:
    return datetime.fromisoformat(body[field])


async def open_case(system: System, http: httpx.AsyncClient) -> str:
    complaint_id = await register(system, http)
    await until_record(
        system, "the case to open", lambda record: of(record, complaint_id, "EscalationStarted")
    )
    return complaint_id


async def post(
    system: System,
    http: httpx.AsyncClient,
    url: str,
    by: str,
    body: dict[str, Any] | None = None,
    expected: int = 200,
) -> dict[str, Any]:
    """POST as the member of staff ``by``, signed in."""
    response = await http.post(url, json=body, headers=system.signed_in(by))
    assert response.status_code == expected, response.text
    answer: dict[str, Any] = response.json()
    return answer


def callbacks_of(
    record: list[RecordEntry], complaint_id: str, event_type: str, purpose: str
) -> list[dict[str, Any]]:
    scheduled = {
        body["callback_id"]
        for body in of(record, complaint_id, "CallbackScheduled")
        if body["purpose"] == purpose
    }
    return [body for body in of(record, complaint_id, event_type) if body["callback_id"] in scheduled]


async def test_callbacks_after_the_response_and_the_closure_close_the_loop_or_reopen_the_case(
    callbacks: System, http: httpx.AsyncClient
) -> None:
    complaint_id = await open_case(callbacks, http)
    cases = callbacks.url("escalation", f"/v1/cases/{complaint_id}")
    await post(
        callbacks, http, f"{cases}/first-response", "hd-003", {"patient_reached": True, "notes": "apologised"}
    )

    record = await until_record(
        callbacks,
        "the callback after the response to fall due",
        lambda record: callbacks_of(record, complaint_id, "CallbackDue", "after_first_response"),
    )
    [responded] = of(record, complaint_id, "FirstResponseRecorded")
    [scheduled] = of(record, complaint_id, "CallbackScheduled")
    assert at(scheduled, "due_at") == at(responded) + OFFSET
    assignee = scheduled["assignee"]
    assert assignee in CALLBACK_STAFF
    callback_id = scheduled["callback_id"]

    # The assignee's work list shows it as due; nobody else's does.
    work_list = callbacks.url("followup", "/v1/callbacks")
    caller = callbacks.signed_in(assignee)
    due = (await http.get(work_list, params={"assignee": assignee, "status": "due"}, headers=caller)).json()
    assert [callback["callback_id"] for callback in due] == [callback_id]
    other = next(staff for staff in CALLBACK_STAFF if staff != assignee)
    assert (
        await http.get(work_list, params={"assignee": other, "status": "due"}, headers=caller)
    ).json() == []
    completed = {"assignee": assignee, "status": "completed"}
    assert (await http.get(work_list, params=completed, headers=caller)).json() == []

    # A content patient: the patient-feedback duty is done by the callback, and the case can close.
    outcomes = callbacks.url("followup", f"/v1/callbacks/{callback_id}/outcome")
    done = await post(
        callbacks,
        http,
        outcomes,
        assignee,
        {"satisfaction": 4, "resolved": True, "comments": "All good now."},
    )
    assert (done["status"], done["comments"]) == ("completed", "All good now.")
    # The patient's words are kept sealed with the complaint's key, opened only for the view: in no
    # file of the store, its write-ahead log included, which does hold the outcome just recorded.
    followup_dir = callbacks.settings.service_dir("followup")
    assert store_holds(followup_dir, b"Callback.Completed")
    assert not store_holds(followup_dir, b"All good now.")
    record = await until_record(
        callbacks,
        "the feedback duty fulfilled",
        lambda record: of(record, complaint_id, "DutyFulfilled", "patient_feedback"),
    )
    [fulfilled] = of(record, complaint_id, "DutyFulfilled", "patient_feedback")
    assert fulfilled["by"] == assignee
    assert not of(record, complaint_id, "CaseReopenRequested")
    await post(callbacks, http, outcomes, assignee, {"satisfaction": 5, "resolved": True}, expected=409)

    await post(callbacks, http, f"{cases}/duties/supervisor_acknowledgement/acknowledge", "sv-003")
    await post(callbacks, http, f"{cases}/reports", "sv-003", {"to": "ex-002", "text": "Reported."})
    await post(callbacks, http, f"{cases}/reports", "n-001", {"to": "ex-002", "text": "Reported."})
    measure = {"measure": "Pain rounds every two hours.", "responsible": "sv-003"}
    await post(callbacks, http, f"{cases}/corrective-measure", "sv-003", measure)
    await post(callbacks, http, f"{cases}/close", "sv-003")

    record = await until_record(
        callbacks,
        "the callback after closure to fall due",
        lambda record: callbacks_of(record, complaint_id, "CallbackDue", "after_closure"),
    )
    [closed] = of(record, complaint_id, "CaseClosed")
    [after_closure] = callbacks_of(record, complaint_id, "CallbackScheduled", "after_closure")
    assert at(after_closure, "due_at") == at(closed) + CLOSURE_OFFSET

    # An unhappy patient: the case reopens with a new first-response duty, chased anew.
    unhappy = {"satisfaction": 2, "resolved": True, "comments": "Nobody listened."}
    outcome = callbacks.url("followup", f"/v1/callbacks/{after_closure['callback_id']}/outcome")
    await post(callbacks, http, outcome, assignee, unhappy)
    record = await until_record(
        callbacks,
        "the case reopened and the new duty chased",
        lambda record: len(alerts_of(record, complaint_id, "first_response")) >= 2,
    )
    [requested] = of(record, complaint_id, "CaseReopenRequested")
    assert requested["reason"] == "satisfaction 2 of 5"
    [reopened] = of(record, complaint_id, "CaseReopened")
    assert reopened["callback_id"] == after_closure["callback_id"]
    first_responses = of(record, complaint_id, "DutyAssigned", "first_response")
    assert len(first_responses) == 2
    assert at(first_responses[1], "due_at") == at(requested) + timedelta(hours=2)
    case = (await http.get(cases, headers=callbacks.signed_in("sv-003"))).json()
    assert case["closed_at"] is None
    [reopening] = case["reopened"]
    assert reopening.endswith(f"reopened after callback {after_closure['callback_id']}: satisfaction 2 of 5")
    duty = next(duty for duty in case["duties"] if duty["duty"] == "first_response")
    assert duty["status"] == "open"
    assert duty["owner"] == "hd-003"


async def test_discharged_patients_not_reached_are_tried_again_then_abandoned(
    callbacks: System, http: httpx.AsyncClient
) -> None:
    complaint_id = await open_case(callbacks, http)
    discharges = callbacks.url("followup", f"/v1/complaints/{complaint_id}/discharge-callback")
    earlier, later = now() - timedelta(minutes=2), now() - timedelta(minutes=1)

    async def registered(discharged_at: datetime) -> dict[str, Any]:
        """Once followup has seen the case open; until then the complaint is unknown to it (404)."""
        response = await http.post(
            discharges,
            json={"discharged_at": discharged_at.isoformat()},
            headers=callbacks.signed_in("hd-003"),
        )
        assert response.status_code in (201, 404), response.text
        answer: dict[str, Any] = response.json() if response.status_code == 201 else {}
        return answer

    # Registered in the opposite order of their due times: the work list goes by due time.
    second = await eventually(lambda: registered(later), what="the discharge registered")
    first = await registered(earlier)
    assert (await registered(earlier))["callback_id"] == first["callback_id"]  # the same discharge again
    unknown = callbacks.url(
        "followup", "/v1/complaints/00000000-0000-4000-8000-000000000000/discharge-callback"
    )
    await post(callbacks, http, unknown, "hd-003", {"discharged_at": earlier.isoformat()}, expected=404)
    await post(callbacks, http, discharges, "au-001", {"discharged_at": earlier.isoformat()}, expected=403)
    future = (now() + timedelta(days=1)).isoformat()
    await post(callbacks, http, discharges, "hd-003", {"discharged_at": future}, expected=422)
    await post(callbacks, http, discharges, "hd-003", {"discharged_at": "2026-11-23T10:00:00"}, expected=422)

    await until_record(
        callbacks, "both calls to fall due", lambda record: len(of(record, complaint_id, "CallbackDue")) == 2
    )
    assignee = first["assignee"]
    due = (
        await http.get(
            callbacks.url("followup", "/v1/callbacks"),
            params={"assignee": assignee, "status": "due"},
            headers=callbacks.signed_in(assignee),
        )
    ).json()
    assert [callback["callback_id"] for callback in due] == [first["callback_id"], second["callback_id"]]

    calls = callbacks.url("followup", f"/v1/callbacks/{first['callback_id']}")
    await post(
        callbacks, http, f"{calls}/outcome", "n-001", {"satisfaction": 5, "resolved": True}, expected=403
    )
    await post(
        callbacks, http, f"{calls}/outcome", assignee, {"satisfaction": 6, "resolved": True}, expected=422
    )
    again = await post(callbacks, http, f"{calls}/not-reached", assignee, {"notes": "no answer"})
    assert (again["attempt"], again["status"]) == (2, "scheduled")
    record = await until_record(
        callbacks,
        "the second attempt to fall due",
        lambda record: [body for body in of(record, complaint_id, "CallbackDue") if body["attempt"] == 2],
    )
    [attempted] = of(record, complaint_id, "CallbackAttempted")
    [retry] = [body for body in of(record, complaint_id, "CallbackScheduled") if body["attempt"] == 2]
    assert at(retry, "due_at") == at(attempted) + RETRY

    gone = await post(callbacks, http, f"{calls}/not-reached", assignee, {"notes": "no answer again"})
    assert gone["status"] == "abandoned"
    record = await until_record(
        callbacks, "the callback abandoned", lambda record: of(record, complaint_id, "CallbackAbandoned")
    )
    assert [body["attempts"] for body in of(record, complaint_id, "CallbackAbandoned")] == [2]
    assert len(of(record, complaint_id, "CallbackAttempted")) == 2
    await post(
        callbacks, http, f"{calls}/outcome", assignee, {"satisfaction": 5, "resolved": True}, expected=409
    )
    assert not of(record, complaint_id, "CaseReopenRequested")


async def test_pending_callbacks_fire_once_across_restarts_of_followup_and_nats(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    async with running(
        tmp_path, after_first_response_seconds=4, complete_within_seconds=4, discharge_within_seconds=5
    ) as system:
        complaint_ids = [await open_case(system, http) for _ in range(3)]
        for complaint_id in complaint_ids:
            cases = system.url("escalation", f"/v1/cases/{complaint_id}")
            await post(system, http, f"{cases}/first-response", "hd-003", {"patient_reached": True})
        await until_record(
            system,
            "every callback scheduled",
            lambda record: all(
                of(record, complaint_id, "CallbackScheduled") for complaint_id in complaint_ids
            ),
        )
        system.kill("followup")
        await system.stop_nats()
        await system.start_nats_again()
        await system.restart("followup")

        # Nobody calls: each callback falls due, then is overdue, against the case.
        await until_record(
            system,
            "every callback overdue",
            lambda record: all(of(record, complaint_id, "CallbackOverdue") for complaint_id in complaint_ids),
            within=60,
        )
        assert system.nc is not None
        js = system.nc.jetstream()

        async def timers_handled() -> bool:
            info = await js.consumer_info(timer_stream("followup"), "followup")
            return (info.num_pending, info.num_ack_pending) == (0, 0)

        await eventually(timers_handled, what="followup handling every fire")
        record = await system.record()
        counts = Counter(
            (entry.complaint_id, entry.event_type) for entry in record if entry.service == "followup"
        )
        assert counts == Counter(
            {
                (complaint_id, kind): 1
                for complaint_id in complaint_ids
                for kind in ("CallbackScheduled", "CallbackDue", "CallbackOverdue")
            }
        )
        for complaint_id in complaint_ids:
            [overdue] = of(record, complaint_id, "CallbackOverdue")
            assert not {"by", "person", "assignee"} & set(overdue)
