"""Submissions that channel systems publish on the bus: their format, the channel that sent each, and
how one is taken in.

A channel (a call centre, a chat gateway, a kiosk) declared in the policy's ``[intake.bus_channels]``
publishes on ``submissions.<channel>`` with its own credential, which may publish nowhere else: the
subject says who sent it. The body is the body of ``POST /v1/complaints`` with the channel's own id of
the message besides. Intake registers it through the same registration as HTTP, once per message id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.intake.api import ComplaintRequest
from services.intake.application import IntakeApplication
from services.intake.channels import MAX_REF
from services.intake.domain import Receipt
from shared import refusals
from shared.bus import channel_of, submission_subject
from shared.consumer import described
from shared.events import Channel
from shared.policy import BusChannel, IntakePolicy

MessageId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_REF,
        pattern=r"^[!-~]+$",  # printable ASCII without spaces: it goes on the record as the reference
        description="The channel's own id of this message, unique among its messages: the same id again "
        "registers nothing new. Publish '<channel>:<message_id>' as the Nats-Msg-Id header too (the "
        "server's duplicate window is the stream's, which every channel shares).",
    ),
]


class SubmittedMessage(BaseModel):
    """What makes a message on a submission subject a channel's message at all: a JSON object with its
    id. Only this is decoded first, so that everything else is judged, and a bad submission recorded as
    rejected, under the channel's id of it."""

    model_config = ConfigDict(frozen=True, extra="allow")

    message_id: MessageId


@dataclass(frozen=True)
class ChannelMessage:
    """A message on a submission subject: the channel that published it (its subject, which the
    channel's credential cannot choose) and what it says."""

    channel: str
    message: SubmittedMessage

    @classmethod
    def decode(cls, subject: str, data: bytes) -> ChannelMessage:
        return cls(channel_of(subject), SubmittedMessage.model_validate_json(data))


class Submission(ComplaintRequest):
    """A complaint as a channel publishes it on ``submissions.<channel>``: the body of
    ``POST /v1/complaints``, with the channel's id of the message. The first hearer is the owner of the
    channel's inbox, from the policy."""

    message_id: MessageId

    @field_validator("channel")
    @classmethod
    def _not_a_staff_report(cls, channel: Channel) -> Channel:
        if channel == "staff_report":
            raise ValueError("staff reports are made by their reporter, signed in, not by a channel system")
        return channel


def take_submission(
    store: IntakeApplication, policy: IntakePolicy, channel: str, message: SubmittedMessage, now: datetime
) -> Receipt:
    """Register a channel's submission, or record why not (``ChannelMessageRejected``); the same message
    id again changes nothing, and another submission under an id already taken is rejected. A channel
    the policy does not declare (its credential left behind) breaks a rule: the message is set aside."""
    declared = policy.bus_channels.get(channel)
    if declared is None:
        raise refusals.NotPossible(f"the policy declares no channel {channel!r} in [intake.bus_channels]")
    message_ref = f"{submission_subject(channel)}:{message.message_id}"
    try:
        submission = Submission.model_validate(message.model_dump())
    except ValidationError as error:
        return store.refuse_message(_named_channel(message, declared), message_ref, described(error), now)
    if submission.channel not in declared.channels:
        reason = f"channel: {channel} submits for {', '.join(declared.channels)}, not {submission.channel}"
        return store.refuse_message(declared.channels[0], message_ref, reason, now)
    registration = submission.registration(declared.heard_by, policy.default_language)
    return store.receive_submission(message_ref, registration, now)


def _named_channel(message: SubmittedMessage, declared: BusChannel) -> Channel:
    """The channel a rejected submission names, if it is one of the channel system's; else its first."""
    named = (message.model_extra or {}).get("channel")
    return next((channel for channel in declared.channels if channel == named), declared.channels[0])
