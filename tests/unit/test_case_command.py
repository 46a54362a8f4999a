"""`kizuki case`: which complaint a reference names on the record, and its duties as people read them."""

from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from kizuki.audit import RecordEntry
from kizuki.case import complaint_named, print_case, rebuild
from shared.reference import AmbiguousReference, NotAComplaintId, UnknownReference, reference_of

pytestmark = pytest.mark.unit

TWINS = (UUID("00000000-0000-0000-0000-000000046e8d"), UUID("00000000-0000-0000-0000-00000034ae43"))
TOKYO = ZoneInfo("Asia/Tokyo")
OPENED = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def entry(sequence: int, event_type: str, complaint_id: UUID, at: datetime, **body: Any) -> RecordEntry:
    service = "intake" if event_type == "ComplaintReceived" else "escalation"
    fields = {"complaint_id": str(complaint_id), "occurred_at": at.isoformat(), **body}
    return RecordEntry(sequence, f"events.{service}.{event_type}", fields)


def received(sequence: int, complaint_id: UUID) -> RecordEntry:
    return entry(
        sequence, "ComplaintReceived", complaint_id, OPENED - timedelta(minutes=20),
        recorded_at=OPENED.isoformat(), channel="phone", heard_by="n-001", department="Ward 3",
    )  # fmt: skip


def test_a_reference_names_its_complaint_and_one_two_share_asks_for_the_id() -> None:
    alone = UUID("8b0c8a7e-1c64-4d39-9e53-3f3b0a3d2f10")
    record = [received(1, TWINS[0]), received(2, TWINS[1]), received(3, alone)]
    assert complaint_named(reference_of(alone).lower(), record) == alone
    assert complaint_named(str(TWINS[1]), record) == TWINS[1]
    with pytest.raises(AmbiguousReference, match="belongs to 2 complaints"):
        complaint_named(reference_of(TWINS[0]), record)
    with pytest.raises(UnknownReference, match="no complaint with reference ZZZZ-ZZZZ on the record"):
        complaint_named("zzzz-zzzz", record)
    with pytest.raises(NotAComplaintId, match="neither a complaint id nor a reference"):
        complaint_named("case 12", record)


def test_each_duty_reads_done_on_time_done_late_missed_open_or_overdue() -> None:
    complaint = TWINS[0]
    due = {
        "supervisor_acknowledgement": 10,
        "supervisor_report": 60,
        "first_response": 100,
        "patient_feedback": 5,
    }
    record = [received(1, complaint)]
    for kind, minutes in [*due.items(), ("first_hearer_report", 60 * 24 * 30)]:
        record.append(entry(
            len(record) + 1, "DutyAssigned", complaint, OPENED,
            duty=kind, owner="sv-003", due_at=(OPENED + timedelta(minutes=minutes)).isoformat(),
        ))  # fmt: skip
    acknowledged = OPENED + timedelta(minutes=5)
    called = OPENED + timedelta(minutes=120)
    missed = OPENED + timedelta(minutes=60)
    record += [
        entry(10, "DutyFulfilled", complaint, acknowledged, duty="supervisor_acknowledgement", by="sv-003",
              how="acknowledged"),
        entry(11, "DutyFulfilled", complaint, called, duty="first_response", by="hd-003", how="called"),
        entry(12, "DutyMissed", complaint, missed, duty="supervisor_report", person="sv-003",
              due_at=missed.isoformat()),
    ]  # fmt: skip
    out = StringIO()
    print_case(rebuild(complaint, record, TOKYO), TOKYO, OPENED + timedelta(hours=3), out)
    lines = {line.split()[0]: line for line in out.getvalue().splitlines() if line.startswith("  ")}
    assert "done on time, 2026-12-01 09:05 by sv-003" in lines["supervisor_acknowledgement"]
    assert "done late, 2026-12-01 11:00 by hd-003" in lines["first_response"]
    assert lines["supervisor_report"].endswith("missed by sv-003")
    assert lines["patient_feedback"].endswith("open, overdue")
    assert lines["first_hearer_report"].endswith("  open")
    assert out.getvalue().startswith(
        f"Case {reference_of(complaint)}  (complaint {complaint}; times in Asia/Tokyo)"
    )


def test_an_alert_sent_with_its_duty_reads_requested_then_as_it_went() -> None:
    complaint = TWINS[0]
    alert = {"recipient": "sv-003", "tier": "complex", "alert_number": 1, "attempt": 1, "next_alert_at": None}
    record = [
        received(1, complaint),
        entry(
            2, "DutyAssigned", complaint, OPENED, duty="supervisor_acknowledgement", owner="sv-003",
            due_at=(OPENED + timedelta(minutes=10)).isoformat(), alert=alert,
        ),
        entry(
            3, "DutyAssigned", complaint, OPENED, duty="supervisor_report", owner="sv-003",
            due_at=(OPENED + timedelta(minutes=60)).isoformat(), alert=alert,
        ),
        entry(
            4, "NotificationSent", complaint, OPENED, duty="supervisor_acknowledgement", recipient="sv-003",
            alert_number=1, channel="email",
        ),
    ]  # fmt: skip
    out = StringIO()
    print_case(rebuild(complaint, record, TOKYO), TOKYO, OPENED, out)
    assert "supervisor_acknowledgement alert 1 to sv-003: sent by email" in out.getvalue()
    assert "supervisor_report alert 1 to sv-003: requested" in out.getvalue()
