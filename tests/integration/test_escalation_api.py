"""Escalation's HTTP API on a real store: each role allowed and refused as the regime says."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from uuid import UUID

import httpx
import pytest
from eventsourcing.persistence import Tracking
from fastapi.testclient import TestClient

from services.escalation.main import create_app
from shared.directory import Directory
from shared.policy import Policy
from shared.settings import Settings
from shared.timers import now
from tests.conftest import Headers, stored
from tests.factories import complaint_received

pytestmark = pytest.mark.integration

ASSESSMENT = {"demand_valid": True, "means_appropriate": True, "impact_on_staff": False}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """Without entering the client the lifespan does not run: the API and its store, no bus."""
    app = create_app(settings)
    yield TestClient(app)
    app.state.runtime.store.close()


@pytest.fixture
def case(client: TestClient, policy: Policy, directory: Directory) -> str:
    """A case opened for a complaint n-001 of Ward 3 heard."""
    complaint = complaint_received(heard_by="n-001", department="Ward 3")
    store = client.app.state.runtime.store  # type: ignore[attr-defined]
    store.open_case(complaint, "Results were lost.", policy, directory, now(), Tracking("EVENTS", 1))
    return f"/v1/cases/{complaint.complaint_id}"


def test_no_token_is_401_and_the_case_is_read_by_its_people_and_overseers(
    client: TestClient, case: str, signed_in: Headers
) -> None:
    assert client.get(case).status_code == 401
    for staff_id in ("n-001", "sv-003", "hd-003", "ex-002", "q-001", "au-001"):
        response = client.get(case, headers=signed_in(staff_id))
        assert response.status_code == 200, staff_id
        assert UUID(response.json()["complaint_id"])
    outsider = client.get(case, headers=signed_in("n-002"))
    assert outsider.status_code == 403
    assert "n-002 is not among the people of this case" in outsider.json()["detail"]


def test_the_auditor_reads_everything_and_writes_nothing(
    client: TestClient, case: str, signed_in: Headers
) -> None:
    before = stored(client)
    auditor = signed_in("au-001")
    for path, body in [
        ("duties/supervisor_acknowledgement/acknowledge", None),
        ("reports", {"to": "ex-002", "text": "Seen."}),
        ("harassment-assessment", ASSESSMENT),
        ("close", None),
    ]:
        response = client.post(f"{case}/{path}", json=body, headers=auditor)
        assert response.status_code == 403, path
        assert "au-001 may not do this" in response.json()["detail"]
    assert stored(client) == before


def test_harassment_is_judged_by_a_supervisor_or_above_never_by_the_front_line(
    client: TestClient, case: str, signed_in: Headers
) -> None:
    nurse = client.post(f"{case}/harassment-assessment", json=ASSESSMENT, headers=signed_in("n-001"))
    assert nurse.status_code == 403
    assert (
        nurse.json()["detail"]
        == "n-001 may not do this: it takes the role executive or second_line or supervisor"
    )
    # The right role but outside the case: the supervisor of another ward.
    other_ward = client.post(f"{case}/harassment-assessment", json=ASSESSMENT, headers=signed_in("sv-010"))
    assert other_ward.status_code == 403
    assert "sv-010 is neither the owner" in other_ward.json()["detail"]
    judged = client.post(f"{case}/harassment-assessment", json=ASSESSMENT, headers=signed_in("sv-003"))
    assert judged.status_code == 200
    assert judged.json()["harassment"] is not None


def test_the_actor_is_the_person_signed_in_and_a_body_naming_another_is_refused(
    client: TestClient, case: str, signed_in: Headers
) -> None:
    before = stored(client)
    impersonation = client.post(
        f"{case}/reports",
        json={"by": "sv-003", "to": "ex-002", "text": "As sv-003."},
        headers=signed_in("n-001"),
    )
    assert impersonation.status_code == 422
    assert "'by' is taken from your credential" in impersonation.text
    assert stored(client) == before
    filed = client.post(
        f"{case}/reports", json={"to": "ex-002", "text": "I heard it."}, headers=signed_in("n-001")
    )
    assert filed.status_code == 200
    [report] = filed.json()["reports"]
    assert report.endswith("first_hearer_report by n-001 to ex-002")


def test_an_apology_call_back_dated_beyond_the_policy_window_is_422_and_records_nothing(
    client: TestClient, policy: Policy, directory: Directory, signed_in: Headers
) -> None:
    four_days_ago = now() - timedelta(days=4)
    complaint = complaint_received(heard_by="n-001", department="Ward 3", occurred_at=four_days_ago)
    store = client.app.state.runtime.store  # type: ignore[attr-defined]
    store.open_case(complaint, "Results were lost.", policy, directory, now(), Tracking("EVENTS", 1))
    calls = f"/v1/cases/{complaint.complaint_id}/first-response"
    before = stored(client)
    handler = signed_in("hd-003")

    def call(at: datetime) -> httpx.Response:
        response: httpx.Response = client.post(
            calls, json={"patient_reached": True, "at": at.isoformat()}, headers=handler
        )
        return response

    three_days_ago = call(now() - timedelta(days=3))
    assert three_days_ago.status_code == 422
    assert "at most 6 hours before it is recorded" in three_days_ago.json()["detail"]
    assert "first_response_within_seconds" in three_days_ago.json()["detail"]
    before_it_occurred = call(four_days_ago - timedelta(minutes=1))
    assert before_it_occurred.status_code == 422
    assert "cannot be before the complaint occurred" in before_it_occurred.json()["detail"]
    tomorrow = call(now() + timedelta(days=1))
    assert tomorrow.status_code == 422
    assert "cannot be in the future" in tomorrow.json()["detail"]
    outsider = client.post(calls, json={"patient_reached": True}, headers=signed_in("n-002"))
    assert outsider.status_code == 403
    assert stored(client) == before
    an_hour_ago = now() - timedelta(hours=1)
    taken = call(an_hour_ago)
    assert taken.status_code == 200
    first_response = next(duty for duty in taken.json()["duties"] if duty["duty"] == "first_response")
    assert first_response["history"][-1].startswith(an_hour_ago.isoformat())
