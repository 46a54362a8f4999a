"""Submissions that channel systems publish on the bus: their format, the channel that sent each, and
how one is taken in.

A channel (a call centre, a chat gateway, a kiosk) declared in the policy's ``[intake.bus_channels]``
publishes on ``submissions.<channel>`` with its own credential, which may publish nowhere else: the
subject says who sent it. The body is the body of ``POST /v1/complaints`` with the channel's own id of
the message besides. Intake registers it through the same registration as HTTP, once per message id.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import nats.errors
from nats.js import JetStreamContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.intake.api import ComplaintRequest
from services.intake.application import IntakeApplication
from services.intake.channels import MAX_REF
from services.intake.domain import Receipt
from shared import refusals
from shared.bus import BusUser, connect, submission_subject
from shared.consumer import described
from shared.events import Channel
from shared.policy import BusChannel, IntakePolicy

# How long a handler waits for the stream to say where a message was published.
READ_WITHIN_SECONDS = 5.0

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


class PublishedSubjects:
    """The subject each message of a stream was published on, read back from the stream by its sequence.

    A consumer hands its handler a message's body and its place in the stream, not its subject. A
    submission's subject is the one thing about it the channel cannot choose (its credential publishes
    on its own subject only), so the handler, in a worker thread, reads it back as the server stored it.
    A worker of the service's runtime: it keeps a connection of its own on the runtime's event loop.
    Not leased: it only reads, for its own replica's handlers."""

    def __init__(self, stream: str, url: str, user: BusUser | None) -> None:
        self.stream = stream
        self.url = url
        self.user = user
        self._reading: tuple[asyncio.AbstractEventLoop, JetStreamContext] | None = None

    async def run(self) -> None:
        nc = await connect(self.url, f"intake-reads-{self.stream.lower()}", user=self.user)
        self._reading = (asyncio.get_running_loop(), nc.jetstream())
        try:
            await asyncio.Event().wait()
        finally:
            self._reading = None
            await nc.close()

    def wake(self) -> None:
        """A commit is nothing to it."""

    def subject(self, sequence: int) -> str:
        """Raises a passing fault (the message comes back later) while it is not connected."""
        if self._reading is None:
            raise nats.errors.ConnectionClosedError
        loop, js = self._reading
        found = asyncio.run_coroutine_threadsafe(js.get_msg(self.stream, sequence), loop)
        subject = found.result(READ_WITHIN_SECONDS).subject
        assert subject is not None  # every stored message has one
        return subject
