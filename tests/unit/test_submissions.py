"""A channel's submission: what decodes, what is judged after, and what a rejection may say."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from services.intake.api import ComplaintRequest
from services.intake.submissions import ChannelMessage, Submission, SubmittedMessage
from shared.bus import submission_subject
from shared.consumer import described

pytestmark = pytest.mark.unit

STORY = "受付で三時間待たされ、説明もありませんでした"


def submission(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_id": "cc-20261203-0001",
        "channel": "phone",
        "occurred_at": "2026-12-03T09:30:00+09:00",
        "department": "Outpatients",
        "summary": STORY,
        "complainant": {"name": "山田花子", "contact": "+81-90-1234-5678"},
        "language": "ja",
    }
    return {**body, **changes}


def test_a_submission_is_the_body_of_a_registration_with_the_channels_message_id() -> None:
    body = submission()
    decoded = Submission.model_validate(body)
    assert decoded.message_id == "cc-20261203-0001"
    without_id = {name: value for name, value in body.items() if name != "message_id"}
    assert (
        decoded.model_dump(exclude={"message_id"}) == ComplaintRequest.model_validate(without_id).model_dump()
    )
    registration = decoded.registration(heard_by="n-002", default_language="en")
    assert (registration.heard_by, registration.reporter, registration.language) == ("n-002", None, "ja")
    assert registration.complainant_contact == "+81-90-1234-5678"


def test_only_the_message_id_is_decoded_first_so_a_bad_submission_is_judged_under_its_id() -> None:
    decoded = SubmittedMessage.model_validate_json(json.dumps(submission(summary="", department=7)))
    assert decoded.message_id == "cc-20261203-0001"
    with pytest.raises(ValidationError):
        Submission.model_validate(decoded.model_dump())


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[1, 2]",
        b'{"summary": "no id"}',
        json.dumps({"message_id": "has a space"}).encode(),
        json.dumps({"message_id": ""}).encode(),
        json.dumps({"message_id": "x" * 129}).encode(),
        json.dumps({"message_id": "名前"}).encode(),
    ],
)
def test_what_has_no_usable_message_id_is_not_a_submission(data: bytes) -> None:
    with pytest.raises(ValidationError):
        SubmittedMessage.model_validate_json(data)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"summary": "x" * 4001}, "summary: String should have at most 4000 characters"),
        ({"department": ""}, "department: String should have at least 1 character"),
        ({"occurred_at": "2026-12-03T09:30:00"}, "occurred_at: Input should have timezone info"),
        ({"channel": "fax"}, "channel: Input should be"),
        ({"channel": "staff_report"}, "staff reports are made by their reporter"),
        ({"anonymous": True}, "only a staff report (channel staff_report) can be anonymous"),
        ({"heard_by": "ex-001"}, "'heard_by' is taken from your credential"),
        ({"patient_story": STORY}, "patient_story: Extra inputs are not permitted"),
    ],
)
def test_a_submission_holds_to_every_limit_of_a_registration_and_the_reason_quotes_no_patient_data(
    changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        Submission.model_validate(submission(**changes))
    reason = described(refused.value)
    assert problem in reason
    assert STORY not in reason
    assert "山田" not in reason


def test_the_channel_of_a_message_is_its_subject_whatever_its_body_says() -> None:
    body = json.dumps(submission(message_id="m-1") | {"sent_by": "kiosk"}).encode()
    decoded = ChannelMessage.decode(submission_subject("call-centre"), body)
    assert decoded.channel == "call-centre"
    assert decoded.message.message_id == "m-1"
