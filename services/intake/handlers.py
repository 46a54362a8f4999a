"""What intake does with the bus: the submissions channel systems publish."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Tracking

from services.intake.application import IntakeApplication
from services.intake.submissions import PublishedSubjects, SubmittedMessage, take_submission
from shared.bus import channel_of
from shared.consumer import Consumer
from shared.contracts import INTAKE
from shared.policy import IntakePolicy
from shared.timers import now


def consumers(
    store: IntakeApplication, policy: IntakePolicy, subjects: PublishedSubjects
) -> list[Consumer[Any]]:
    def when_a_channel_submits_register_its_complaint(message: SubmittedMessage, tracking: Tracking) -> None:
        channel = channel_of(subjects.subject(tracking.notification_id))
        # Registered (or rejected) once per message id whatever happens here, so the tracking record
        # may follow in its own transaction: a message handled again after a crash between the two
        # changes nothing, and is then tracked.
        take_submission(store, policy, channel, message, now())
        store.record(tracking=tracking)

    submitted = INTAKE.submitted
    assert submitted is not None  # intake's contract takes submissions
    return [
        Consumer(
            submitted, SubmittedMessage.model_validate_json, when_a_channel_submits_register_its_complaint
        )
    ]
