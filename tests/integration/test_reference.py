"""A complaint's reference in a path, on a real store: resolved through the store's index, refused
clearly when it is not one, names no complaint here, or names two."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest
from eventsourcing.persistence import Tracking
from fastapi.testclient import TestClient

from services.escalation.main import create_app
from shared.directory import Directory
from shared.policy import Policy
from shared.reference import reference_of
from shared.settings import Settings
from shared.timers import now
from tests.conftest import Headers
from tests.factories import complaint_received

pytestmark = pytest.mark.integration

# Two ids whose references are the same (found by search): forty bits do collide, rarely.
TWINS = (UUID("00000000-0000-0000-0000-000000046e8d"), UUID("00000000-0000-0000-0000-00000034ae43"))
ALONE = UUID("8b0c8a7e-1c64-4d39-9e53-3f3b0a3d2f10")


@pytest.fixture
def client(settings: Settings, policy: Policy, directory: Directory) -> Iterator[TestClient]:
    """Escalation's API and store (no bus), with a case for each of the three complaints."""
    app = create_app(settings)
    store = app.state.runtime.store
    for sequence, complaint_id in enumerate((*TWINS, ALONE), start=1):
        complaint = complaint_received(complaint_id=complaint_id, heard_by="n-001", department="Ward 3")
        store.open_case(
            complaint, "Results were lost.", policy, directory, now(), Tracking("EVENTS", sequence)
        )
    yield TestClient(app)
    store.close()


def test_a_reference_reads_the_case_as_its_id_does_however_it_is_typed(
    client: TestClient, signed_in: Headers
) -> None:
    nurse = signed_in("n-001")
    by_id = client.get(f"/v1/cases/{ALONE}", headers=nurse)
    assert by_id.status_code == 200
    reference = reference_of(ALONE)
    assert by_id.json()["reference"] == reference
    for typed in (reference, reference.lower(), reference.replace("-", "")):
        assert client.get(f"/v1/cases/{typed}", headers=nurse).json() == by_id.json()


def test_a_reference_two_complaints_share_asks_for_the_full_id(
    client: TestClient, signed_in: Headers
) -> None:
    reference = reference_of(TWINS[0])
    assert reference_of(TWINS[1]) == reference
    shared = client.get(f"/v1/cases/{reference}", headers=signed_in("n-001"))
    assert shared.status_code == 409
    assert shared.json()["detail"] == f"reference {reference} belongs to 2 complaints: give the full id"
    for complaint_id in TWINS:
        by_id = client.get(f"/v1/cases/{complaint_id}", headers=signed_in("n-001"))
        assert by_id.json()["complaint_id"] == str(complaint_id)


def test_an_unknown_reference_is_404_and_what_is_no_reference_422_each_saying_so(
    client: TestClient, signed_in: Headers
) -> None:
    unknown = client.get("/v1/cases/ZZZZ-ZZZZ", headers=signed_in("n-001"))
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "no complaint with reference ZZZZ-ZZZZ")
    garbage = client.post("/v1/cases/case-one/close", headers=signed_in("sv-003"))
    assert garbage.status_code == 422
    [problem] = garbage.json()["problems"]
    assert problem["field"] == "complaint_id"
    assert "neither a complaint id nor a reference" in problem["message"]


def test_nobody_learns_whether_a_reference_exists_without_signing_in(client: TestClient) -> None:
    assert client.get(f"/v1/cases/{reference_of(ALONE)}").status_code == 401
    assert client.get("/v1/cases/ZZZZ-ZZZZ").status_code == 401
