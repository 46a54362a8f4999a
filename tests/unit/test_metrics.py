"""The pure parts of the metrics: the console's duty counts, requests named by their route's template,
and the setting that turns metrics off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from services.console.domain import Case, Duty
from services.console.duty_metrics import owed_duties
from shared.metrics import REGISTRY
from shared.metrics_http import TimedRequests
from shared.policy import DUTY_KINDS
from shared.settings import SettingsError, load_settings

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def case(*duties: Duty, closed: bool = False) -> Case:
    return Case(uuid4(), duties={duty.kind: duty for duty in duties}, closed_at=NOW if closed else None)


def test_open_duties_are_counted_by_kind_and_those_past_due_as_overdue() -> None:
    due_soon = Duty("first_response", "n-001", NOW + timedelta(hours=1))
    past_due = Duty("supervisor_report", "sv-003", NOW - timedelta(minutes=1))
    done = Duty("supervisor_acknowledgement", "sv-003", NOW - timedelta(hours=1), "sv-003", NOW)
    owed, overdue = owed_duties([case(due_soon, past_due, done), case(past_due)], NOW)
    assert owed == {**dict.fromkeys(DUTY_KINDS, 0), "first_response": 1, "supervisor_report": 2}
    assert overdue == {**dict.fromkeys(DUTY_KINDS, 0), "supervisor_report": 2}


def test_a_closed_case_owes_nothing() -> None:
    owed, overdue = owed_duties([case(Duty("first_response", "n-001", NOW), closed=True)], NOW)
    assert sum(owed.values()) == sum(overdue.values()) == 0
    assert set(owed) == set(DUTY_KINDS)  # every kind is shown, so that no series vanishes


def test_a_request_is_counted_under_its_route_template_never_its_url() -> None:
    app = FastAPI()

    @app.get("/v1/cases/{complaint_id}")
    async def get_case(complaint_id: str) -> dict[str, str]:
        return {"complaint_id": complaint_id}

    app.add_middleware(TimedRequests)
    complaint_id = str(uuid4())
    with TestClient(app) as client:
        assert client.get(f"/v1/cases/{complaint_id}").status_code == 200
        assert client.get(f"/nothing/{complaint_id}").status_code == 404
        assert client.request("BREW", "/v1/cases/x").status_code == 405
    text = generate_latest(REGISTRY).decode()
    assert complaint_id not in text
    assert 'route="/v1/cases/{complaint_id}",status="200"' in text
    assert 'method="GET",route="unmatched",status="404"' in text
    assert 'method="other",route="/v1/cases/{complaint_id}",status="405"' in text


@pytest.mark.parametrize(("value", "on"), [(None, True), ("on", True), ("off", False)])
def test_metrics_are_on_unless_turned_off(value: str | None, on: bool) -> None:
    env = {} if value is None else {"KIZUKI_METRICS": value}
    assert load_settings(env).metrics is on


def test_metrics_take_only_on_or_off() -> None:
    with pytest.raises(SettingsError, match="KIZUKI_METRICS must be 'on' or 'off', not 'no'"):
        load_settings({"KIZUKI_METRICS": "no"})
