"""Followup's HTTP API on a real store: a callback is seen and acted on as its complaint is, and only
once it is due."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Tracking
from fastapi.testclient import TestClient

from services.followup.application import FollowupApplication
from services.followup.domain import Callback
from services.followup.main import create_app
from shared.directory import Directory
from shared.events import EscalationStarted
from shared.policy import Policy
from shared.settings import Settings
from shared.timers import now
from tests.conftest import Headers, stored
from tests.factories import complaint_received

pytestmark = pytest.mark.integration

# Anchored this far back, a callback is due whatever the calendar moves it by (quiet hours, holidays).
LONG_AGO = timedelta(days=12)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """Without entering the client the lifespan does not run: the API and its store, no bus."""
    app = create_app(settings)
    yield TestClient(app)
    app.state.runtime.store.close()


class Hospital:
    """Complaints as followup learns them from the record, and their callbacks."""

    def __init__(self, client: TestClient, policy: Policy, directory: Directory) -> None:
        self.store: FollowupApplication = client.app.state.runtime.store  # type: ignore[attr-defined]
        self.policy, self.directory = policy, directory
        self.sequence = itertools.count(1)

    def tracking(self) -> Tracking:
        return Tracking("EVENTS", next(self.sequence))

    def complaint(self, heard_by: str, department: str, heard: bool = True) -> UUID:
        """A complaint whose case opened; ``heard=False``: received before followup kept who it concerns."""
        complaint = complaint_received(heard_by=heard_by, department=department)
        if heard:
            self.store.hear_complaint(complaint, self.tracking())
        moment = now()
        opened = EscalationStarted(
            event_id=uuid4(),
            complaint_id=complaint.complaint_id,
            occurred_at=moment,
            recorded_at=moment,
            policy_version=self.policy.version,
            tier="complex",
            tier_reason="the policy's default",
        )
        self.store.follow_case(opened, self.tracking())
        return complaint.complaint_id

    def callback(self, complaint_id: UUID, anchor: datetime) -> Callback:
        return self.store.schedule(
            complaint_id,
            "after_first_response",
            anchor,
            uuid4(),
            self.policy,
            self.directory,
            self.tracking(),
        )


@pytest.fixture
def hospital(client: TestClient, policy: Policy, directory: Directory) -> Hospital:
    return Hospital(client, policy, directory)


def seen(client: TestClient, headers: dict[str, str]) -> set[str]:
    response = client.get("/v1/callbacks", headers=headers)
    assert response.status_code == 200, response.text
    return {callback["callback_id"] for callback in response.json()}


def test_a_callback_is_seen_by_the_people_of_its_complaint_its_team_and_the_overseers(
    client: TestClient, hospital: Hospital, signed_in: Headers
) -> None:
    ward = hospital.callback(hospital.complaint("n-001", "Ward 3"), now() - LONG_AGO)
    outpatients_complaint = hospital.complaint("n-002", "Outpatients")
    outpatients = hospital.callback(outpatients_complaint, now() - LONG_AGO)
    unheard = hospital.callback(hospital.complaint("n-001", "Ward 3", heard=False), now() - LONG_AGO)
    everything = {str(ward.id), str(outpatients.id), str(unheard.id)}

    assert client.get("/v1/callbacks").status_code == 401
    # The first hearer, the department (its handler, its supervisors), the people above the first hearer.
    for staff_id in ("n-001", "hd-003", "sv-003", "sv-004"):
        assert seen(client, signed_in(staff_id)) == {str(ward.id)}, staff_id
    for staff_id in ("n-002", "hd-010", "sv-010"):
        assert seen(client, signed_in(staff_id)) == {str(outpatients.id)}, staff_id
    # Neither the complaint nor the callbacks are theirs.
    assert seen(client, signed_in("sl-001")) == set()
    # The callback staff share the calls (their team); the overseers see all.
    for staff_id in ("cb-001", "cb-002", "q-001", "au-001", "ex-001"):
        assert seen(client, signed_in(staff_id)) == everything, staff_id

    one = f"/v1/callbacks/{outpatients.id}"
    refused = client.get(one, headers=signed_in("hd-003"))
    assert refused.status_code == 403
    assert "outside your department, chain and team" in refused.json()["detail"]
    assert client.get(one, headers=signed_in("hd-010")).status_code == 200
    its = f"/v1/complaints/{outpatients_complaint}/callbacks"
    assert client.get(its, headers=signed_in("n-001")).status_code == 403
    listed = client.get(its, headers=signed_in("cb-001"))
    assert [callback["callback_id"] for callback in listed.json()] == [str(outpatients.id)]


def test_a_discharge_callback_is_registered_by_someone_of_the_case_and_not_back_dated(
    client: TestClient, hospital: Hospital, signed_in: Headers
) -> None:
    complaint_id = hospital.complaint("n-001", "Ward 3")
    discharges = f"/v1/complaints/{complaint_id}/discharge-callback"
    before = stored(client)

    def register(by: str, discharged_at: datetime) -> tuple[int, object]:
        response = client.post(
            discharges, json={"discharged_at": discharged_at.isoformat()}, headers=signed_in(by)
        )
        return response.status_code, response.json()

    an_hour_ago = now() - timedelta(hours=1)
    for outsider in ("n-002", "hd-010", "cb-001"):
        code, answer = register(outsider, an_hour_ago)
        assert code == 403, outsider
        assert "outside your department and chain" in str(answer)
    assert register("au-001", an_hour_ago)[0] == 403  # the auditor writes nothing
    code, answer = register("hd-003", now() - timedelta(days=3))
    assert code == 422
    assert "at most 2 days before it is recorded" in str(answer)
    assert "discharge_within_seconds" in str(answer)
    code, answer = register("hd-003", now() + timedelta(days=1))
    assert (code, "cannot be in the future" in str(answer)) == (422, True)
    assert stored(client) == before
    unknown = f"/v1/complaints/{uuid4()}/discharge-callback"
    response = client.post(
        unknown, json={"discharged_at": an_hour_ago.isoformat()}, headers=signed_in("hd-003")
    )
    assert response.status_code == 404

    code, answer = register("hd-003", an_hour_ago)
    assert code == 201
    assert isinstance(answer, dict)
    assert answer["status"] == "scheduled"
    assert register("n-001", an_hour_ago) == (201, answer)  # the first hearer; the same discharge


def test_a_callback_is_refused_with_409_before_it_is_due_saying_when(
    client: TestClient, hospital: Hospital, signed_in: Headers
) -> None:
    complaint_id = hospital.complaint("n-001", "Ward 3")
    upcoming = hospital.callback(complaint_id, now())
    caller = signed_in(upcoming.assignee)
    before = stored(client)
    for action, body in (("not-reached", {"notes": ""}), ("outcome", {"satisfaction": 5, "resolved": True})):
        response = client.post(f"/v1/callbacks/{upcoming.id}/{action}", json=body, headers=caller)
        assert response.status_code == 409, action
        detail = response.json()["detail"]
        assert detail.startswith("the callback is not due yet: attempt 1 is due at "), detail
        assert datetime.fromisoformat(detail.rsplit(" ", 1)[-1]) == upcoming.due_at
    assert stored(client) == before

    due = hospital.callback(complaint_id, now() - LONG_AGO)
    again = client.post(f"/v1/callbacks/{due.id}/not-reached", json={"notes": ""}, headers=caller)
    assert again.status_code == 200, again.text
    assert again.json()["attempt"] == 2
    assert datetime.fromisoformat(again.json()["due_at"]) > due.due_at
