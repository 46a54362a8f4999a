"""Learning notices on the real services and NATS, with a policy of seconds: issued to two
departments, chased, signed off by one and answered "not applicable, because ..." by the other; and a
department that lets the deadline pass is overdue, with no person named. A complaint linked to an
anonymous adverse-event report."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from kizuki.audit import RecordEntry
from tests.e2e.conftest import System, complaint, of, register, until_record, write_policy
from tests.e2e.test_reporting_regime import fire_consumed

# `beside`: mostly waits on timers.
pytestmark = [pytest.mark.e2e, pytest.mark.beside]

INTERVAL = 2  # seconds between alerts to a person who has not answered
ATTEMPTS = 2  # alerts to one person before the next one up the chain
WARDS = ["Ward 3", "Outpatients"]


async def notices_system(tmp_path: Path, answer_within_seconds: int) -> System:
    policy = write_policy(tmp_path / "policy.toml", version="notices-1", chase=(INTERVAL, ATTEMPTS))
    text, found = re.subn(
        r"(\[escalation\.learning_notices\][^\[]*?)within_working_days = \d+",
        rf"\g<1>within_seconds = {answer_within_seconds}",
        policy.read_text(encoding="utf-8"),
    )
    assert found == 1
    policy.write_text(text, encoding="utf-8")
    system = System(tmp_path, policy)
    await system.start()
    return system


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def issue_notice(system: System, http: httpx.AsyncClient) -> tuple[str, str]:
    """A complaint of Ward 3, its corrective measure, and a notice of it to both wards; the case and
    the notice's path."""
    complaint_id = await register(system, http)
    await until_record(system, "the case opened", lambda r: of(r, complaint_id, "EscalationStarted"))
    case = system.url("escalation", f"/v1/cases/{complaint_id}")
    measure = {"measure": "Pain rounds every hour.", "responsible": "sv-003"}
    taken = await http.post(f"{case}/corrective-measure", json=measure, headers=system.signed_in("hd-003"))
    assert taken.status_code == 200, taken.text
    issued = await http.post(
        f"{case}/learning-notices",
        json={"departments": WARDS, "categories": ["institutional_processes"]},
        headers=system.signed_in("q-001"),
    )
    assert issued.status_code == 200, issued.text
    [notice] = issued.json()["learning_notices"]
    return complaint_id, f"{case}/learning-notices/{notice['notice_id']}"


def notice_alerts(record: list[RecordEntry], complaint_id: str) -> list[tuple[str, int]]:
    alerts = of(record, complaint_id, "AlertRequested", "learning_notice")
    return sorted((body["recipient"], body["alert_number"]) for body in alerts)


def having(complaint_id: str, kind: str, count: int) -> Callable[[list[RecordEntry]], bool]:
    return lambda record: len(of(record, complaint_id, kind)) >= count


async def test_a_notice_is_chased_then_signed_off_by_one_department_and_not_applicable_for_another(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    system = await notices_system(tmp_path, answer_within_seconds=120)
    try:
        complaint_id, notice = await issue_notice(system, http)
        record = await until_record(
            system,
            "a notice alert sent again",
            lambda r: {"sv-003", "sv-010"} <= {who for who, n in notice_alerts(r, complaint_id) if n > 2},
        )
        [issued] = of(record, complaint_id, "LearningNoticeIssued")
        assert issued["responsible"] == {"Ward 3": "sv-003", "Outpatients": "sv-010"}
        # Each alert has its own number (the notifier keys a delivery by case, duty and number): all
        # four are delivered.
        await until_record(
            system,
            "the notice alerts delivered",
            lambda r: len(of(r, complaint_id, "NotificationSent", "learning_notice")) >= 4,
        )
        signed_off = await http.post(
            f"{notice}/answer",
            json={"department": "Ward 3", "answer": "action_complete"},
            headers=system.signed_in("sv-003"),
        )
        assert signed_off.status_code == 200, signed_off.text
        because = "Outpatients has no night rounds."
        not_applicable = await http.post(
            f"{notice}/answer",
            json={"department": "Outpatients", "answer": "not_applicable", "reason": because},
            headers=system.signed_in("sv-010"),
        )
        assert not_applicable.status_code == 200, not_applicable.text
        record = await until_record(system, "both answers", having(complaint_id, "LearningNoticeAnswered", 2))
        answers: dict[str, Any] = {
            body["department"]: (body["answer"], body["answered_by"], body["reason"])
            for body in of(record, complaint_id, "LearningNoticeAnswered")
        }
        assert answers == {
            "Ward 3": ("action_complete", "sv-003", None),
            "Outpatients": ("not_applicable", "sv-010", because),
        }
        assert not of(record, complaint_id, "LearningNoticeOverdue")
        # Answered: the chase has stopped. The follow-up of the latest alert fires and sends nothing.
        last = max(number for _, number in notice_alerts(record, complaint_id))
        await fire_consumed(system, complaint_id, "learning_notice", last + 1)
        assert max(number for _, number in notice_alerts(await system.record(), complaint_id)) == last
        await link_to_an_anonymous_report(system, http, complaint_id)
    finally:
        await system.stop()


async def test_a_department_that_lets_the_deadline_pass_is_overdue_and_no_person_is_named(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    system = await notices_system(tmp_path, answer_within_seconds=6)
    try:
        complaint_id, notice = await issue_notice(system, http)
        answered = await http.post(
            f"{notice}/answer",
            json={"department": "Ward 3", "answer": "action_complete"},
            headers=system.signed_in("sv-003"),
        )
        assert answered.status_code == 200, answered.text
        record = await until_record(
            system, "the notice overdue", having(complaint_id, "LearningNoticeOverdue", 1)
        )
        [overdue] = of(record, complaint_id, "LearningNoticeOverdue")
        assert overdue["department"] == "Outpatients"
        assert not of(record, complaint_id, "DutyMissed")
        view = await http.get(
            system.url("escalation", f"/v1/cases/{complaint_id}"), headers=system.signed_in("sv-010")
        )
        statuses = {d["department"]: d["status"] for d in view.json()["learning_notices"][0]["departments"]}
        assert statuses == {"Ward 3": "action_complete", "Outpatients": "overdue"}
    finally:
        await system.stop()


async def link_to_an_anonymous_report(system: System, http: httpx.AsyncClient, complaint_id: str) -> None:
    """Nurse n-002 reports the adverse event anonymously; the patient-safety officer links the complaint
    to it by its reference. Nothing of the link names her."""
    reported = await http.post(
        system.url("intake", "/v1/complaints"),
        json=complaint(channel="staff_report", anonymous=True, complainant=None),
        headers=system.signed_in("n-002"),
    )
    assert reported.status_code == 201, reported.text
    report_id, reference = reported.json()["complaint_id"], reported.json()["reference"]
    await until_record(system, "the report's case", lambda r: of(r, report_id, "EscalationStarted"))
    linked = await http.post(
        system.url("escalation", f"/v1/cases/{complaint_id}/safety-event"),
        json={"adverse_event": reference},
        headers=system.signed_in("ps-001"),
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["safety_events"] == [{"adverse_event_id": report_id, "reference": reference}]
    assert "n-002" not in linked.text
    record = await until_record(system, "the link", having(complaint_id, "SafetyEventLinked", 1))
    [link] = of(record, complaint_id, "SafetyEventLinked")
    assert (link["adverse_event_id"], link["linked_by"]) == (report_id, "ps-001")
    assert "n-002" not in str(link)
