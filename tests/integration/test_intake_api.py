"""Intake's HTTP validation on a real store: bad input gets a clear 4xx and records nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.intake.main import create_app
from shared.settings import Settings
from shared.timers import now

pytestmark = pytest.mark.integration

VALID: dict[str, Any] = {
    "channel": "phone",
    "occurred_at": "2026-11-23T09:30:00+09:00",
    "heard_by": "n-001",
    "department": "Ward 3",
    "summary": "Waited three hours for pain medication.",
    "complainant": {"name": "Sato Hanako", "contact": "+81-3-0000-0000"},
}


@pytest.fixture
def client(settings: Settings) -> TestClient:
    # Without entering the client the lifespan does not run: the API and its store, no bus.
    return TestClient(create_app(settings))


def stored(client: TestClient) -> int:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime.store.process_recorder.max_notification_id() or 0


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


@pytest.mark.parametrize("missing", ["channel", "occurred_at", "heard_by", "department", "summary"])
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
