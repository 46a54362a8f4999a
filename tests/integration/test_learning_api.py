"""Escalation's learning actions on a real store: coding, learning notices, safety-event links, each
by the right role and on the record."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking
from fastapi.testclient import TestClient

from services.escalation.main import create_app
from shared.directory import Directory
from shared.events import NotificationAcknowledged
from shared.policy import Policy
from shared.reference import reference_of
from shared.settings import Settings
from shared.timers import now
from tests.conftest import Headers, stored
from tests.factories import complaint_received

pytestmark = pytest.mark.integration

SEQUENCES = itertools.count(1)  # each case opened as if from its own message of the record
CODING = {"severities": {"institutional_processes": 2, "safety": 1}, "harm": 2, "stage": "care_on_the_ward"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    yield TestClient(app)
    app.state.runtime.store.close()


def open_case(client: TestClient, policy: Policy, directory: Directory, **changes: Any) -> str:
    complaint = complaint_received(**({"heard_by": "n-001", "department": "Ward 3"} | changes))
    store = client.app.state.runtime.store  # type: ignore[attr-defined]
    store.open_case(
        complaint, "Waited for hours.", policy, directory, now(), Tracking("EVENTS", next(SEQUENCES))
    )
    return f"/v1/cases/{complaint.complaint_id}"


@pytest.fixture
def case(client: TestClient, policy: Policy, directory: Directory) -> str:
    return open_case(client, policy, directory, category="Waiting times")


def test_a_handler_of_the_case_or_quality_codes_and_blind_codings_stay_out_of_the_view(
    client: TestClient, case: str, signed_in: Headers
) -> None:
    before = stored(client)
    assert client.post(f"{case}/coding", json=CODING, headers=signed_in("n-001")).status_code == 403
    assert client.post(f"{case}/coding", json=CODING, headers=signed_in("hd-010")).status_code == 403
    bad = client.post(f"{case}/coding", json=CODING | {"harm": 6}, headers=signed_in("hd-003"))
    assert bad.status_code == 422
    assert "harm" in bad.text
    unknown = client.post(
        f"{case}/coding", json=CODING | {"severities": {"food": 1}}, headers=signed_in("q-001")
    )
    assert unknown.status_code == 422
    assert stored(client) == before
    coded = client.post(f"{case}/coding", json=CODING, headers=signed_in("hd-003")).json()
    assert coded["suggested_hcat_category"] == "institutional_processes"  # [hcat.map] of the policy
    assert coded["coding"]["coded_by"] == "hd-003"
    assert coded["coding"]["severities"]["communication"] == 0
    blind = client.post(
        f"{case}/coding", json=CODING | {"blind": True, "harm": 4}, headers=signed_in("q-001")
    )
    assert blind.json()["coding"]["harm"] == 2  # the blind coding is not the case's, nor shown
    again = client.post(f"{case}/coding", json=CODING | {"blind": True}, headers=signed_in("hd-003"))
    assert again.status_code == 409


def test_a_notice_goes_to_each_departments_head_who_reads_and_answers_it(
    client: TestClient, case: str, signed_in: Headers
) -> None:
    quality = signed_in("q-001")
    notices = f"{case}/learning-notices"
    before_measure = client.post(notices, json={"departments": ["Ward 3"]}, headers=quality)
    assert before_measure.status_code == 409
    assert "record the corrective measure first" in before_measure.text
    measure = {"measure": "Pain rounds every hour.", "responsible": "sv-003"}
    assert (
        client.post(f"{case}/corrective-measure", json=measure, headers=signed_in("hd-003")).status_code
        == 200
    )
    client.post(f"{case}/coding", json=CODING, headers=signed_in("hd-003"))
    before = stored(client)
    unknown = client.post(notices, json={"departments": ["Kitchen"]}, headers=quality)
    assert unknown.status_code == 422
    assert "no department 'Kitchen'" in unknown.text
    assert (
        client.post(notices, json={"departments": ["Ward 3"]}, headers=signed_in("n-001")).status_code == 403
    )
    assert stored(client) == before
    issued = client.post(notices, json={"departments": ["Ward 3", "Outpatients"]}, headers=quality)
    assert issued.status_code == 200, issued.text
    [notice] = issued.json()["learning_notices"]
    assert notice["categories"] == ["safety", "institutional_processes"]  # from the coding
    assert [(d["department"], d["responsible"], d["status"]) for d in notice["departments"]] == [
        ("Ward 3", "sv-003", "open"),
        ("Outpatients", "sv-010", "open"),
    ]
    path = f"{notices}/{notice['notice_id']}"
    outpatients = signed_in("sv-010")
    assert client.get(case, headers=outpatients).status_code == 200  # they answer for a department
    no_reason = client.post(
        f"{path}/answer", json={"department": "Outpatients", "answer": "not_applicable"}, headers=outpatients
    )
    assert no_reason.status_code == 422
    assert "needs the reason why" in no_reason.text
    wrong = client.post(
        f"{path}/answer", json={"department": "Ward 3", "answer": "action_complete"}, headers=outpatients
    )
    assert wrong.status_code == 403
    assert (
        client.post(f"{path}/read", json={"department": "Outpatients"}, headers=outpatients).status_code
        == 200
    )
    client.post(
        f"{path}/answer",
        json={"department": "Outpatients", "answer": "not_applicable", "reason": "No night rounds here."},
        headers=outpatients,
    )
    done = client.post(
        f"{path}/answer",
        json={"department": "Ward 3", "answer": "action_complete"},
        headers=signed_in("sv-003"),
    )
    statuses = {
        d["department"]: (d["status"], d["reason"]) for d in done.json()["learning_notices"][0]["departments"]
    }
    assert statuses == {
        "Ward 3": ("action_complete", None),
        "Outpatients": ("not_applicable", "No night rounds here."),
    }
    twice = client.post(
        f"{path}/answer",
        json={"department": "Ward 3", "answer": "action_complete"},
        headers=signed_in("sv-003"),
    )
    assert twice.status_code == 409


def test_a_complaint_links_to_an_adverse_event_report_by_its_reference_and_to_nothing_else(
    client: TestClient, case: str, policy: Policy, directory: Directory, signed_in: Headers
) -> None:
    report = open_case(
        client, policy, directory, channel="staff_report", heard_by="ps-001", department="Ward 3"
    )
    report_id = report.rsplit("/", 1)[1]
    other = open_case(client, policy, directory).rsplit("/", 1)[1]
    link = f"{case}/safety-event"
    safety = signed_in("ps-001")
    before = stored(client)
    assert client.post(link, json={"adverse_event": other}, headers=safety).status_code == 409
    assert client.post(link, json={"adverse_event": "ZZZZ-ZZZZ"}, headers=safety).status_code == 422
    assert client.post(link, json={"adverse_event": report_id}, headers=signed_in("n-001")).status_code == 403
    # The right role but outside the case: refused before the report is looked up, so that the answer
    # says nothing of which reports exist.
    outsider = client.post(link, json={"adverse_event": "ZZZZ-ZZZZ"}, headers=signed_in("sv-010"))
    assert outsider.status_code == 403
    assert stored(client) == before
    linked = client.post(link, json={"adverse_event": reference_of(UUID(report_id))}, headers=safety)
    assert linked.status_code == 200, linked.text
    assert linked.json()["safety_events"] == [
        {"adverse_event_id": report_id, "reference": reference_of(UUID(report_id))}
    ]


def test_the_alert_link_of_a_notice_is_reading_it_for_the_departments_that_alerted_that_person(
    client: TestClient, case: str, signed_in: Headers
) -> None:
    measure = {"measure": "Pain rounds every hour.", "responsible": "sv-003"}
    client.post(f"{case}/corrective-measure", json=measure, headers=signed_in("hd-003"))
    issued = client.post(
        f"{case}/learning-notices",
        json={"departments": ["Ward 3", "Outpatients"]},
        headers=signed_in("q-001"),
    )
    complaint_id = UUID(issued.json()["complaint_id"])
    store = client.app.state.runtime.store  # type: ignore[attr-defined]
    moment = now()
    link = NotificationAcknowledged(
        event_id=uuid4(),
        complaint_id=complaint_id,
        occurred_at=moment,
        recorded_at=moment,
        delivery_id=uuid4(),
        duty="learning_notice",
        by="sv-010",
    )
    store.acknowledged_through_link(link, Tracking("EVENTS", next(SEQUENCES)))
    view = client.get(case, headers=signed_in("q-001")).json()
    statuses = {
        d["department"]: (d["status"], d["read_by"]) for d in view["learning_notices"][0]["departments"]
    }
    assert statuses == {"Ward 3": ("open", None), "Outpatients": ("read", "sv-010")}
