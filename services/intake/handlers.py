"""What intake does with the bus: the submissions channel systems publish."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Tracking

from services.intake.application import IntakeApplication
from services.intake.submissions import ChannelMessage, take_submission
from shared.consumer import Consumer
from shared.contracts import INTAKE
from shared.messages import Handles, Submitted
from shared.policy import IntakePolicy
from shared.timers import now


def consumers(store: IntakeApplication, policy: IntakePolicy) -> list[Consumer[Any]]:
    def when_a_channel_submits_register_its_complaint(submitted: ChannelMessage, tracking: Tracking) -> None:
        # Registered (or rejected) once per message id whatever happens here, so the tracking record
        # may follow in its own transaction: a message handled again after a crash between the two
        # changes nothing, and is then tracked.
        take_submission(store, policy, submitted.channel, submitted.message, now())
        store.record(tracking=tracking)

    return Handles(
        INTAKE, submitted=Submitted(ChannelMessage.decode, when_a_channel_submits_register_its_complaint)
    ).consumers()
