"""Valid domain and wire objects for tests, with whatever a test needs changed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

from services.intake.domain import Registration
from shared.events import ComplaintReceived
from shared.timers import now


def registration(**changes: Any) -> Registration:
    fields: dict[str, Any] = {
        "channel": "phone",
        "occurred_at": now() - timedelta(minutes=30),
        "heard_by": "n-001",
        "department": "Ward 3",
        "summary": "Waited three hours for pain medication.",
        "complainant_name": "Sato Hanako",
        "complainant_contact": "sato@example.org",
        "category": None,
        "tier": None,
        "language": "ja",
    }
    return Registration(**(fields | changes))


def complaint_received(**changes: Any) -> ComplaintReceived:
    moment = now()
    fields: dict[str, Any] = {
        "event_id": uuid4(),
        "complaint_id": uuid4(),
        "occurred_at": moment,
        "recorded_at": moment,
        "channel": "web",
        "heard_by": "n-002",
        "department": "Radiology",
        "summary": "Results were lost.",
        "language": "en",
    }
    return ComplaintReceived(**(fields | changes))
