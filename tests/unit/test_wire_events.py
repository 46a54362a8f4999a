from datetime import UTC, datetime
from uuid import uuid4

import pytest
from pydantic import ValidationError

from shared.events import (
    CallbackDue,
    EscalationStarted,
    MessageRejected,
    decode_event,
    decoder,
    encode_event,
    headers_for,
)
from tests.factories import complaint_received

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def test_an_event_survives_the_wire_unchanged() -> None:
    event = complaint_received()
    assert decode_event(encode_event(event)) == event


def test_subjects_name_the_service_and_the_event() -> None:
    assert complaint_received().subject == "events.intake.ComplaintReceived"
    rejection = MessageRejected(
        event_id=uuid4(),
        occurred_at=NOW,
        recorded_at=NOW,
        rejected_by="notifier",
        stream="EVENTS",
        stream_sequence=7,
        message_subject="events.intake.ComplaintReceived",
        reason="bad",
    )
    assert rejection.subject == "events.notifier.MessageRejected"


def test_headers_carry_deduplication_type_version_and_correlation() -> None:
    event = complaint_received()
    headers = headers_for(event, "intake:12")
    assert headers == {
        "Nats-Msg-Id": "intake:12",
        "Kizuki-Event-Type": "ComplaintReceived",
        "Kizuki-Event-Version": "2",
        "Kizuki-Complaint-Id": str(event.complaint_id),
    }


def test_a_body_that_is_no_event_is_refused() -> None:
    with pytest.raises(ValidationError):
        decode_event(b'{"type": "ComplaintReceived", "summary": "missing everything else"}')
    with pytest.raises(ValidationError):
        decode_event(b"not json")


def test_a_consumer_decoder_refuses_event_types_it_does_not_take() -> None:
    only_cases = decoder(EscalationStarted)
    with pytest.raises(ValueError, match="expected EscalationStarted, got ComplaintReceived"):
        only_cases(encode_event(complaint_received()))


def test_events_are_immutable_and_refuse_unknown_fields() -> None:
    event = complaint_received()
    with pytest.raises(ValidationError):
        event.department = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        CallbackDue.model_validate({**event.model_dump(), "type": "CallbackDue", "blame": "nurse"})
