"""Valid domain and wire objects for tests, with whatever a test needs changed."""

from __future__ import annotations

import base64
import os
from datetime import timedelta
from typing import Any
from uuid import uuid4

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from services.intake.domain import Registration
from shared.events import AlertRequested, ComplaintReceived
from shared.privacy import PatientData, seal_patient_data
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


def another_patients(n: int) -> Registration:
    """Alike texts from one contact would be flagged as possible duplicates: each from another patient."""
    return registration(summary=f"complaint {n}", complainant_contact=f"patient-{n}@example.org")


# The data key of every complaint these factories make; tests that open one put it in the key bucket.
DATA_KEY = bytes(range(32))


def complaint_received(
    summary: str = "Results were lost.", name: str | None = None, contact: str | None = None, **changes: Any
) -> ComplaintReceived:
    """The complainant and the complaint's text sealed with ``DATA_KEY``."""
    moment = now()
    complaint_id = changes.pop("complaint_id", uuid4())
    fields: dict[str, Any] = {
        "event_id": uuid4(),
        "complaint_id": complaint_id,
        "occurred_at": moment,
        "recorded_at": moment,
        "channel": "web",
        "heard_by": "n-002",
        "department": "Radiology",
        "patient_data": seal_patient_data(
            DATA_KEY, complaint_id, PatientData(name=name, contact=contact, summary=summary)
        ),
        "language": "en",
    }
    return ComplaintReceived(**(fields | changes))


AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")  # a 43-character EncodingAESKey


def wechat_encrypted(xml: bytes, aes_key: str = AES_KEY, app_id: bytes = b"wx1234") -> str:
    """What WeChat sends in safe mode, made as its documentation describes."""
    key = base64.b64decode(aes_key + "=")
    plain = os.urandom(16) + len(xml).to_bytes(4, "big") + xml + app_id
    pad = 32 - len(plain) % 32
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()).decode()


def alert_requested(**changes: Any) -> AlertRequested:
    """The first alert of the supervisor's acknowledgement, as escalation asks for it."""
    moment = now()
    fields: dict[str, Any] = {
        "event_id": uuid4(),
        "complaint_id": uuid4(),
        "occurred_at": moment,
        "recorded_at": moment,
        "duty": "supervisor_acknowledgement",
        "recipient": "sv-003",
        "tier": "complex",
        "alert_number": 1,
        "attempt": 1,
        "due_at": moment,
        "next_alert_at": None,
    }
    return AlertRequested(**(fields | changes))
