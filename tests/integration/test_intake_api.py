"""Intake's HTTP API on a real store: who may register and read, and bad input gets a clear 4xx and
records nothing."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kizuki.provision import provision_secrets
from services.intake.main import create_app
from shared.asyncapi import asyncapi_document
from shared.auth import issue_api_key, issue_token
from shared.contracts import INTAKE
from shared.directory import Directory, load_directory
from shared.settings import Settings, load_settings
from shared.timers import now
from tests.conftest import Headers, stored

pytestmark = pytest.mark.integration

VALID: dict[str, Any] = {
    "channel": "phone",
    "occurred_at": "2026-11-23T09:30:00+09:00",
    "department": "Ward 3",
    "summary": "Waited three hours for pain medication.",
    "complainant": {"name": "Sato Hanako", "contact": "+81-3-0000-0000"},
}


@pytest.fixture
def client(settings: Settings, signed_in: Headers) -> TestClient:
    """Signed in as the nurse n-001. Without entering the client the lifespan does not run: no bus."""
    return TestClient(create_app(settings), headers=signed_in("n-001"))


def test_the_bus_messages_are_described_beside_the_api_and_like_it_to_anyone(settings: Settings) -> None:
    anyone = TestClient(create_app(settings))

    assert anyone.get("/openapi.json").status_code == 200
    answer = anyone.get("/asyncapi.json")
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == asyncapi_document(INTAKE)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"occurred_at": "2026-11-23T09:30:00"}, "occurred_at"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"summary": "x" * 4001}, "summary"),
        ({"summary": "   "}, "summary"),
        ({"tier": "catastrophic"}, "tier"),
        ({"language": "fr"}, "language"),
        ({"blame": "the night nurse"}, "blame"),
    ],
)
def test_invalid_fields_are_named_and_nothing_is_recorded(
    client: TestClient, change: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/complaints", json={**VALID, **change})
    assert response.status_code == 422, response.text
    assert field in [problem["field"] for problem in response.json()["problems"]]
    assert stored(client) == 0


@pytest.mark.parametrize("missing", ["channel", "occurred_at", "department", "summary"])
def test_missing_fields_are_named(client: TestClient, missing: str) -> None:
    body = {key: value for key, value in VALID.items() if key != missing}
    response = client.post("/v1/complaints", json=body)
    assert response.status_code == 422
    assert {"field": missing, "message": f"{missing}: is required"} in response.json()["problems"]
    assert stored(client) == 0


def test_a_complaint_in_the_future_is_refused(client: TestClient) -> None:
    response = client.post(
        "/v1/complaints", json={**VALID, "occurred_at": (now() + timedelta(hours=1)).isoformat()}
    )
    assert response.status_code == 422
    assert "occurred_at" in response.json()["detail"]
    assert stored(client) == 0


def test_malformed_json_and_oversized_bodies_are_refused(client: TestClient) -> None:
    response = client.post(
        "/v1/complaints", content=b'{"channel": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "the request body is not valid JSON"
    response = client.post(
        "/v1/complaints", content=b"x" * 70_000, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert stored(client) == 0


def test_a_valid_complaint_is_registered_once_per_idempotency_key(client: TestClient) -> None:
    first = client.post("/v1/complaints", json=VALID, headers={"Idempotency-Key": "desk-42"})
    again = client.post("/v1/complaints", json=VALID, headers={"Idempotency-Key": "desk-42"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert stored(client) == 1
    conflict = client.post(
        "/v1/complaints", json={**VALID, "summary": "Something else."}, headers={"Idempotency-Key": "desk-42"}
    )
    assert conflict.status_code == 409
    assert "already used" in conflict.json()["detail"]
    complaint = client.get(f"/v1/complaints/{first.json()['complaint_id']}").json()
    assert complaint["heard_by"] == "n-001"
    assert complaint["language"] == "ja"  # the policy's default
    assert client.get("/v1/complaints/00000000-0000-0000-0000-000000000000").status_code == 404


def test_without_a_valid_token_nothing_is_registered(client: TestClient, settings: Settings) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer not-a-token"}):
        response = client.post("/v1/complaints", json=VALID, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"] == "Bearer"
    # A token signed with another key (a forgery) is refused like no token at all.
    forger = load_settings({"KIZUKI_DATA_DIR": str(settings.data_dir.parent / "elsewhere")})
    provision_secrets(forger)
    forged = issue_token(forger.token_signing_key, "ex-001", load_directory(settings.directory_path))
    response = client.post("/v1/complaints", json=VALID, headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert response.json()["detail"] == "the token is not valid"
    assert stored(client) == 0


def test_an_expired_token_is_refused_with_a_reason(
    client: TestClient, settings: Settings, directory: Directory
) -> None:
    expired = issue_token(settings.token_signing_key, "n-001", directory, lifetime=timedelta(seconds=-1))
    response = client.post("/v1/complaints", json=VALID, headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    assert stored(client) == 0


@pytest.mark.parametrize("actor_field", ["heard_by", "by"])
def test_a_body_that_names_the_actor_is_refused(client: TestClient, actor_field: str) -> None:
    response = client.post("/v1/complaints", json={**VALID, actor_field: "sv-003"})
    assert response.status_code == 422
    assert f"'{actor_field}' is taken from your credential" in response.text
    assert stored(client) == 0


def test_the_first_hearer_is_the_person_signed_in(client: TestClient, signed_in: Headers) -> None:
    created = client.post("/v1/complaints", json=VALID, headers=signed_in("sv-010"))
    assert created.status_code == 201
    complaint = client.get(f"/v1/complaints/{created.json()['complaint_id']}", headers=signed_in("sv-010"))
    assert complaint.json()["heard_by"] == "sv-010"


def test_an_auditor_reads_and_cannot_register(client: TestClient, signed_in: Headers) -> None:
    created = client.post("/v1/complaints", json=VALID).json()
    auditor = signed_in("au-001")
    refused = client.post("/v1/complaints", json=VALID, headers=auditor)
    assert refused.status_code == 403
    assert "au-001 may not do this" in refused.json()["detail"]
    assert client.get(f"/v1/complaints/{created['complaint_id']}", headers=auditor).status_code == 200
    assert stored(client) == 1


def test_a_complaint_is_read_only_by_its_department_chain_and_overseers(
    client: TestClient, signed_in: Headers
) -> None:
    path = f"/v1/complaints/{client.post('/v1/complaints', json=VALID).json()['complaint_id']}"
    for staff_id in ("n-001", "sv-004", "sv-003", "ex-002", "q-001"):  # hearer, department, chain, quality
        assert client.get(path, headers=signed_in(staff_id)).status_code == 200, staff_id
    refused = client.get(path, headers=signed_in("n-002"))  # a nurse of another department
    assert refused.status_code == 403
    assert "outside your department and chain" in refused.json()["detail"]


def test_a_machine_channel_posts_with_its_api_key_for_its_channels_only(
    client: TestClient, settings: Settings, directory: Directory, signed_in: Headers
) -> None:
    key = issue_api_key(settings.api_keys_path, "call-centre", ["phone"], "n-002", directory)
    assert settings.api_keys_path.stat().st_mode & 0o077 == 0  # owner-only
    assert key not in settings.api_keys_path.read_text()  # only its digest is kept
    machine = TestClient(client.app, headers={"X-API-Key": key})
    created = machine.post("/v1/complaints", json=VALID)
    assert created.status_code == 201
    complaint = client.get(f"/v1/complaints/{created.json()['complaint_id']}", headers=signed_in("q-001"))
    assert complaint.json()["heard_by"] == "n-002"  # the owner of the call centre's inbox
    refused = machine.post("/v1/complaints", json={**VALID, "channel": "web"})
    assert refused.status_code == 403
    assert "may post complaints for phone, not web" in refused.json()["detail"]
    altered = machine.post("/v1/complaints", json=VALID, headers={"X-API-Key": key[:-2] + "xx"})
    assert altered.status_code == 401
    assert stored(client) == 1


def test_readers_see_the_patient_data_until_an_administrator_erases_it(
    client: TestClient, signed_in: Headers, settings: Settings
) -> None:
    created = client.post("/v1/complaints", json=VALID, headers={"Idempotency-Key": "desk-7"})
    path = f"/v1/complaints/{created.json()['complaint_id']}"
    complaint = client.get(path).json()
    assert complaint["summary"] == VALID["summary"]
    assert complaint["complainant"] == VALID["complainant"]
    assert complaint["erased_by"] is None

    refused = client.post(f"{path}/erase", headers=signed_in("n-001"))
    assert refused.status_code == 403
    assert "it takes the role administrator" in refused.json()["detail"]
    assert stored(client) == 1
    erased = client.post(f"{path}/erase", headers=signed_in("dm-001"))
    assert erased.status_code == 200
    assert stored(client) == 2  # ComplaintErased
    after = client.get(path).json()
    assert (after["summary"], after["complainant"], after["erased_by"]) == (None, None, "dm-001")
    assert after["department"] == "Ward 3"  # the facts of the regime stay
    with contextlib.closing(sqlite3.connect(settings.store_file("intake"))) as store:
        assert store.execute("SELECT count(*) FROM patient_keys").fetchone() == (0,)
    again = client.post("/v1/complaints", json=VALID, headers={"Idempotency-Key": "desk-7"})
    assert again.status_code == 409
    assert "erased" in again.json()["detail"]
    assert client.post(f"{path}/erase", headers=signed_in("dm-001")).status_code == 200  # idempotent
    assert stored(client) == 2


def test_an_anonymous_staff_report_seals_its_reporter_for_the_patient_safety_officer_alone(
    client: TestClient, signed_in: Headers, settings: Settings, directory: Directory
) -> None:
    report = {**VALID, "channel": "staff_report", "anonymous": True, "summary": "I gave the wrong dose."}
    created = client.post("/v1/complaints", json=report)  # by the nurse n-001
    assert created.status_code == 201, created.text
    path = f"/v1/complaints/{created.json()['complaint_id']}"
    seen = client.get(path, headers=signed_in("ps-001")).json()
    assert (seen["heard_by"], seen["anonymous"]) == ("ps-001", True)  # received by the safety officer
    assert "n-001" not in str(seen)

    for staff_id in ("n-001", "dm-001", "au-001", "ex-001"):
        refused = client.post(f"{path}/reporter", json={"reason": "curious"}, headers=signed_in(staff_id))
        assert refused.status_code == 403, staff_id
    assert stored(client) == 1
    opened = client.post(
        f"{path}/reporter", json={"reason": "a second patient harmed"}, headers=signed_in("ps-001")
    )
    assert opened.status_code == 200
    assert opened.json() == {
        "complaint_id": created.json()["complaint_id"],
        "reporter": "n-001",
        "opened_by": "ps-001",
    }
    # Every opening is on the record, with who and why.
    store = client.app.state.runtime.store  # type: ignore[attr-defined]
    [*_, last] = store.process_recorder.select_notifications(1, 100)
    opening = store.wire_event(store.mapper.to_domain_event(last))
    assert (type(opening).__name__, opening.by, opening.reason) == (
        "ReporterIdentityOpened",
        "ps-001",
        "a second patient harmed",
    )

    not_anonymous = client.post("/v1/complaints", json=VALID).json()["complaint_id"]
    refused = client.post(
        f"/v1/complaints/{not_anonymous}/reporter", json={"reason": "x"}, headers=signed_in("ps-001")
    )
    assert refused.status_code == 409
    only_staff_reports = client.post("/v1/complaints", json={**VALID, "anonymous": True})
    assert only_staff_reports.status_code == 422
    assert "only a staff report" in only_staff_reports.text
    key = issue_api_key(settings.api_keys_path, "survey", ["staff_report"], "n-002", directory)
    machine = client.post("/v1/complaints", json=report, headers={"X-API-Key": key, "Authorization": ""})
    assert machine.status_code == 403
