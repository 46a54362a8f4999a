"""The reporting regime with a policy of seconds, on the real services and NATS."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from nats.js.errors import NotFoundError

from kizuki.audit import RecordEntry
from shared.bus import schedule_subject, timer_stream
from shared.timers import now
from tests.e2e.conftest import System, alerts_of, of, register, until_record, write_policy
from tests.polling import eventually

# In the loop of the module's system, which its tests share.
# `beside`: mostly waits on timers.
pytestmark = [pytest.mark.e2e, pytest.mark.beside, pytest.mark.asyncio(loop_scope="module")]

INTERVAL = 2  # seconds between alerts to a person who does not answer
ATTEMPTS = 2  # alerts to one person before the next one up the chain
FIRST_HEARER_REPORT_SECONDS = 6


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def regime(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    """One system for the module's tests: each follows complaints of its own, and the chases of earlier
    ones end by themselves (the chain is exhausted within seconds)."""
    tmp_path = tmp_path_factory.mktemp("regime")
    policy = write_policy(
        tmp_path / "policy.toml",
        version="regime-1",
        chase=(INTERVAL, ATTEMPTS),
        duty_seconds={"first_hearer_report": FIRST_HEARER_REPORT_SECONDS},
    )
    running = System(tmp_path, policy)
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


def alerts(record: list[RecordEntry], complaint_id: str, duty: str) -> list[dict[str, Any]]:
    return sorted(alerts_of(record, complaint_id, duty), key=lambda body: body["alert_number"])


async def alert_timer_set(system: System, complaint_id: str, duty: str, alert_number: int) -> None:
    """Wait until the relay has set the timer of that alert, just after the previous alert reached the
    record (it is due an interval later, time enough to see it pending)."""
    subject = schedule_subject("escalation", f"alert.{complaint_id}.{duty}.{alert_number}")
    await eventually(
        lambda: scheduled(system, subject), within=30, what=f"the timer of alert {alert_number} of {duty}"
    )


async def alert_timer_fired(system: System, complaint_id: str, duty: str, alert_number: int) -> None:
    """Wait until the server has fired the timer of that alert: its schedule, set by the relay just after
    the previous alert reached the record, is gone (a fired one-shot schedule is removed, and so is the
    fire once handled)."""
    subject = schedule_subject("escalation", f"alert.{complaint_id}.{duty}.{alert_number}")

    async def fired() -> bool:
        return not await scheduled(system, subject)

    await eventually(fired, within=30, what=f"the fire of alert {alert_number} of {duty}")


async def scheduled(system: System, subject: str) -> bool:
    assert system.nc is not None
    try:
        await system.nc.jetstream().get_last_msg(timer_stream("escalation"), subject)
    except NotFoundError:
        return False
    return True


async def fire_consumed(system: System, complaint_id: str, duty: str, alert_number: int) -> None:
    """Wait until the timer of that alert has fired and escalation has handled the fire (called well
    after the previous alert reached the record: its timer was set by then)."""
    await alert_timer_fired(system, complaint_id, duty, alert_number)
    assert system.nc is not None
    js = system.nc.jetstream()

    async def handled() -> bool:
        info = await js.consumer_info(timer_stream("escalation"), "escalation")
        return (info.num_pending, info.num_ack_pending) == (0, 0)

    await eventually(handled, within=30, what="escalation handling the fire")


async def test_a_supervisor_who_never_answers_is_alerted_at_the_spacing_then_the_chain_goes_up(
    regime: System, http: httpx.AsyncClient
) -> None:
    complaint_id = await register(regime, http)
    duty = "supervisor_acknowledgement"
    expected = [("sv-003", 1), ("sv-003", 2), ("sv-004", 1), ("sv-004", 2), ("ex-002", 1)]
    record = await until_record(
        regime, "five alerts", lambda record: len(alerts(record, complaint_id, duty)) >= len(expected)
    )
    sent = alerts(record, complaint_id, duty)[: len(expected)]
    assert [(alert["recipient"], alert["attempt"]) for alert in sent] == expected
    assert [alert["alert_number"] for alert in sent] == [1, 2, 3, 4, 5]
    for alert, following in itertools.pairwise(sent):
        planned = datetime.fromisoformat(alert["next_alert_at"])
        assert planned - datetime.fromisoformat(alert["occurred_at"]) == timedelta(seconds=INTERVAL)
        # Schedules have second resolution; an alert never goes out before its time.
        assert datetime.fromisoformat(following["occurred_at"]) >= planned.replace(microsecond=0)

    case = (
        await http.get(
            regime.url("escalation", f"/v1/cases/{complaint_id}"), headers=regime.signed_in("sv-003")
        )
    ).json()
    acknowledgement = next(d for d in case["duties"] if d["duty"] == duty)
    assert acknowledgement["owner"] == "sv-003"  # the chain goes up; the duty stays the supervisor's
    assert acknowledgement["status"] == "open"

    delivered = await until_record(
        regime,
        "each alert delivered",
        lambda record: len(of(record, complaint_id, "NotificationSent", duty)) >= len(expected),
    )
    numbers = [body["alert_number"] for body in of(delivered, complaint_id, "NotificationSent", duty)]
    assert len(numbers) == len(set(numbers))


async def test_an_acknowledgement_between_attempts_stops_the_alerts(
    regime: System, http: httpx.AsyncClient
) -> None:
    complaint_id = await register(regime, http)
    duty = "supervisor_report"
    await until_record(regime, "the first alert", lambda record: alerts(record, complaint_id, duty))
    response = await http.post(
        regime.url("escalation", f"/v1/cases/{complaint_id}/duties/{duty}/acknowledge"),
        headers=regime.signed_in("sv-003"),
    )
    assert response.status_code == 200, response.text
    acknowledged = next(d for d in response.json()["duties"] if d["duty"] == duty)
    assert acknowledged["acknowledged_by"] == "sv-003"
    sent_before = acknowledged["alerts_sent"]

    await fire_consumed(regime, complaint_id, duty, sent_before + 1)
    record = await regime.record()
    assert len(alerts(record, complaint_id, duty)) == sent_before
    assert [body["by"] for body in of(record, complaint_id, "AlertAcknowledged", duty)] == ["sv-003"]


async def test_both_report_tracks_are_kept_and_a_missing_first_hearer_report_is_named(
    regime: System, http: httpx.AsyncClient
) -> None:
    complaint_id = await register(regime, http)
    cases = regime.url("escalation", f"/v1/cases/{complaint_id}")
    await until_record(
        regime, "the case to open", lambda record: of(record, complaint_id, "EscalationStarted")
    )
    supervisor = regime.signed_in("sv-003")
    report = {"to": "ex-002", "text": "Pain medication delayed three hours on Ward 3."}
    assert (await http.post(f"{cases}/reports", json=report, headers=supervisor)).status_code == 200
    assert (
        await http.post(f"{cases}/duties/supervisor_acknowledgement/acknowledge", headers=supervisor)
    ).is_success

    record = await until_record(
        regime,
        "the first hearer's report missed",
        lambda record: of(record, complaint_id, "DutyMissed"),
        within=FIRST_HEARER_REPORT_SECONDS + 30,
    )
    missed = [(body["duty"], body["person"]) for body in of(record, complaint_id, "DutyMissed")]
    assert missed == [("first_hearer_report", "n-001")]
    for body in of(record, complaint_id, "DutyMissed"):  # named only once the time has run out
        assert datetime.fromisoformat(body["occurred_at"]) >= datetime.fromisoformat(body["due_at"])
        assert datetime.fromisoformat(body["recorded_at"]) >= datetime.fromisoformat(body["due_at"])
    assert [(b["track"], b["by"], b["to"]) for b in of(record, complaint_id, "ReportFiled")] == [
        ("supervisor_report", "sv-003", "ex-002")
    ]
    statuses = {d["duty"]: d["status"] for d in (await http.get(cases, headers=supervisor)).json()["duties"]}
    assert statuses["first_hearer_report"] == "missed"
    assert statuses["supervisor_report"] == "done"
    assert statuses["supervisor_acknowledgement"] == "done"


async def test_the_apology_deadline_runs_from_when_the_complaint_occurred(
    regime: System, http: httpx.AsyncClient
) -> None:
    ninety_minutes_ago = now() - timedelta(minutes=90)
    three_hours_ago = now() - timedelta(hours=3)
    registered_late = await register(regime, http, occurred_at=ninety_minutes_ago.isoformat())
    registered_after_deadline = await register(regime, http, occurred_at=three_hours_ago.isoformat())

    record = await until_record(
        regime,
        "the late complaint's deadline passed",
        lambda record: of(record, registered_after_deadline, "DeadlinePassed", "first_response"),
    )
    [late] = of(record, registered_late, "DutyAssigned", "first_response")
    assert datetime.fromisoformat(late["due_at"]) == ninety_minutes_ago + timedelta(hours=2)
    assert late["late_on_arrival"] is False
    [too_late] = of(record, registered_after_deadline, "DutyAssigned", "first_response")
    assert too_late["late_on_arrival"] is True
    # Late first response is recorded against the case: nobody is named for it.
    assert not of(record, registered_after_deadline, "DutyMissed", "first_response")
    case = (
        await http.get(
            regime.url("escalation", f"/v1/cases/{registered_after_deadline}"),
            headers=regime.signed_in("q-001"),
        )
    ).json()
    assert next(d for d in case["duties"] if d["duty"] == "first_response")["status"] == "overdue"


async def test_killing_escalation_with_timers_pending_fires_each_once(
    regime: System, http: httpx.AsyncClient
) -> None:
    complaint_ids = [await register(regime, http, summary=f"complaint {n}") for n in range(3)]
    duty = "supervisor_acknowledgement"
    await until_record(
        regime,
        "the second alerts",
        lambda record: all(len(alerts(record, c, duty)) >= 2 for c in complaint_ids),
    )
    for complaint_id in complaint_ids:  # set just after the second alerts went on the record
        await alert_timer_set(regime, complaint_id, duty, 3)
    regime.kill("escalation")
    for complaint_id in complaint_ids:  # timers fall due while escalation is down
        await alert_timer_fired(regime, complaint_id, duty, 3)
    await regime.restart("escalation")

    record = await until_record(
        regime,
        "the chase to reach the executive",
        lambda record: all(len(alerts(record, c, duty)) >= 5 for c in complaint_ids),
        within=60,
    )
    for complaint_id in complaint_ids:
        for kind in ("supervisor_acknowledgement", "supervisor_report", "first_hearer_report"):
            numbers = [alert["alert_number"] for alert in alerts(record, complaint_id, kind)]
            assert numbers == list(range(1, len(numbers) + 1)), (kind, numbers)
    sent = Counter(
        (entry.complaint_id, entry.body["duty"], entry.body["alert_number"])
        for entry in record
        if entry.event_type == "NotificationSent"
    )
    assert max(sent.values()) == 1


async def test_a_policy_change_does_not_change_a_case_already_open(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    policy = write_policy(tmp_path / "policy.toml", version="before", chase=(INTERVAL, 2))
    system = System(tmp_path, policy)
    try:
        await system.start()
        before = await register(system, http)
        await until_record(
            system, "the first case to open", lambda record: of(record, before, "EscalationStarted")
        )
        write_policy(policy, version="after", chase=(INTERVAL, 1))
        system.kill("escalation")
        await system.restart("escalation")
        after = await register(system, http)

        duty = "supervisor_acknowledgement"
        record = await until_record(
            system,
            "second alerts on both cases",
            lambda record: len(alerts(record, before, duty)) >= 2 and len(alerts(record, after, duty)) >= 2,
        )
        assert of(record, before, "EscalationStarted")[0]["policy_version"] == "before"
        assert of(record, after, "EscalationStarted")[0]["policy_version"] == "after"
        assert alerts(record, before, duty)[1]["recipient"] == "sv-003"  # two attempts, as when it opened
        assert alerts(record, after, duty)[1]["recipient"] == "sv-004"  # one attempt, then up the chain
    finally:
        await system.stop()


async def test_the_actions_of_a_case_through_to_its_closing(regime: System, http: httpx.AsyncClient) -> None:
    complaint_id = await register(regime, http)
    cases = regime.url("escalation", f"/v1/cases/{complaint_id}")
    await until_record(
        regime, "the case to open", lambda record: of(record, complaint_id, "EscalationStarted")
    )

    supervisor = regime.signed_in("sv-003")
    refused = await http.post(
        f"{cases}/duties/supervisor_acknowledgement/acknowledge", headers=regime.signed_in("hd-010")
    )
    assert refused.status_code == 403
    assert "hd-010 is neither the owner" in refused.json()["detail"]
    not_yet = await http.post(f"{cases}/close", headers=supervisor)
    assert not_yet.status_code == 409
    assert set(not_yet.json()["detail"]["open_duties"]) == {
        "supervisor_acknowledgement",
        "supervisor_report",
        "first_hearer_report",
        "first_response",
        "patient_feedback",
    }
    assert (
        await http.post(f"{cases}/duties/no_such_duty/acknowledge", headers=supervisor)
    ).status_code == 422
    assert (await http.post(f"{cases}/reports", json={}, headers=supervisor)).status_code == 422
    unknown = regime.url("escalation", "/v1/cases/00000000-0000-0000-0000-000000000000")
    assert (await http.get(unknown, headers=supervisor)).status_code == 404

    steps: list[tuple[str, str, dict[str, Any] | None]] = [
        ("sv-003", "duties/supervisor_acknowledgement/acknowledge", None),
        ("sv-003", "reports", {"to": "ex-002", "text": "Delay in pain medication."}),
        ("n-001", "reports", {"to": "ex-002", "text": "I heard the complaint at 09:30."}),
        ("hd-003", "first-response", {"patient_reached": False}),
        ("hd-003", "first-response", {"patient_reached": True, "notes": "Apologised."}),
        ("sv-003", "harassment-assessment", {"demand_valid": True, "means_appropriate": True,
                                             "impact_on_staff": False}),
        ("hd-003", "patient-feedback", None),
        ("sv-003", "corrective-measure", {"measure": "Pain rounds hourly.", "responsible": "sv-003"}),
        ("sv-003", "close", None),
    ]  # fmt: skip
    for by, path, body in steps:
        response = await http.post(f"{cases}/{path}", json=body, headers=regime.signed_in(by))
        assert response.status_code == 200, (path, response.text)
    assert response.json()["closed_at"] is not None

    record = await until_record(
        regime, "the case closed", lambda record: of(record, complaint_id, "CaseClosed")
    )
    responses = of(record, complaint_id, "FirstResponseRecorded")
    assert [(r["patient_reached"], r["within_window"]) for r in responses] == [(False, True), (True, True)]
    [assessment] = of(record, complaint_id, "HarassmentAssessed")
    assert assessment["is_harassment"] is False
    assert assessment["by"] == "sv-003"
    fulfilled = {body["duty"] for body in of(record, complaint_id, "DutyFulfilled")}
    assert fulfilled == {
        "supervisor_acknowledgement",
        "supervisor_report",
        "first_hearer_report",
        "first_response",
        "patient_feedback",
    }
    assert of(record, complaint_id, "CorrectiveMeasureRecorded")[0]["responsible"] == "sv-003"
    assert not of(record, complaint_id, "DutyMissed")


async def test_pending_timers_survive_a_restart_of_nats(regime: System, http: httpx.AsyncClient) -> None:
    complaint_id = await register(regime, http)
    duty = "supervisor_acknowledgement"
    await until_record(regime, "the first alert", lambda record: alerts(record, complaint_id, duty))
    await regime.stop_nats()
    await regime.start_nats_again()
    record = await until_record(
        regime, "the chase to go on", lambda record: len(alerts(record, complaint_id, duty)) >= 3, within=60
    )
    numbers = [alert["alert_number"] for alert in alerts(record, complaint_id, duty)]
    assert numbers == list(range(1, len(numbers) + 1))


async def test_major_complaints_reach_leadership_and_harassment_moves_the_case(
    regime: System, http: httpx.AsyncClient
) -> None:
    major = await register(regime, http, category="patient safety", summary="The bed rail was left down.")
    harassing = await register(regime, http, summary="Shouted at the nurse for an hour and filmed her.")
    cases = regime.url("escalation", f"/v1/cases/{harassing}")
    await until_record(regime, "the case to open", lambda record: of(record, harassing, "EscalationStarted"))
    assessment = {"demand_valid": False, "means_appropriate": False, "impact_on_staff": True}
    response = await http.post(
        f"{cases}/harassment-assessment", json=assessment, headers=regime.signed_in("sv-003")
    )
    assert response.status_code == 200, response.text
    assert response.json()["protected_staff"] == "n-001"

    record = await until_record(
        regime,
        "the executive alerted and the response handed over",
        lambda record: (
            of(record, major, "AlertRequested", "major_case")
            and len(of(record, harassing, "DutyReassigned")) == 2
        ),
    )
    [started] = of(record, major, "EscalationStarted")
    assert (started["tier"], started["tier_reason"]) == ("major", "category 'patient safety'")
    assert of(record, major, "AlertRequested", "major_case")[0]["recipient"] == "ex-001"
    [judged] = of(record, harassing, "HarassmentAssessed")
    assert (judged["is_harassment"], judged["second_line"], judged["protected_staff"]) == (
        True,
        "sl-001",
        "n-001",
    )
    assert {(body["duty"], body["owner"]) for body in of(record, harassing, "DutyReassigned")} == {
        ("first_response", "sl-001"),
        ("patient_feedback", "sl-001"),
    }
