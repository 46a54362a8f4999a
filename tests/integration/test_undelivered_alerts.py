"""An alert that can reach no one is not lost in the notifier's store: it goes on the record."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import Tracking
from nats.aio.client import Client

from services.notifier.application import AlertOwed, NotifierApplication
from shared.bus import RECORD_STREAM
from shared.chain import SigningKey, new_seed
from shared.directory import Directory
from shared.events import NotificationNotDelivered, decode_event
from shared.outbox import Checkpoints, OutboxRelay
from shared.runtime import open_store
from shared.settings import Settings
from shared.timers import now
from tests.factories import alert_requested

pytestmark = pytest.mark.integration


async def test_an_alert_to_someone_with_no_usable_contact_is_recorded_as_not_delivered(
    nc: Client, settings: Settings, directory: Directory
) -> None:
    store = open_store(NotifierApplication, settings)
    alert = alert_requested(recipient="sv-003", alert_number=2)
    assert "line" not in directory.staff["sv-003"].contacts
    store.request_alert(
        AlertOwed.requested(alert),
        directory,
        {"line"},
        lambda d: f"http://kizuki/ack/{d}",
        now(),
        Tracking(RECORD_STREAM, 1),
    )

    js = nc.jetstream()
    await OutboxRelay(store, js, Checkpoints(SigningKey(new_seed()))).relay_pending()

    info = await js.stream_info(RECORD_STREAM)
    recorded = [
        decode_event((await js.get_msg(RECORD_STREAM, sequence)).data or b"")
        for sequence in range(info.state.first_seq, info.state.last_seq + 1)
    ]
    assert [type(event) for event in recorded] == [NotificationNotDelivered]
    given_up = recorded[0]
    assert isinstance(given_up, NotificationNotDelivered)
    assert (given_up.complaint_id, given_up.recipient, given_up.duty, given_up.alert_number) == (
        alert.complaint_id,
        "sv-003",
        "supervisor_acknowledgement",
        2,
    )
    assert given_up.reason == "sv-003 has no contact on a configured channel"
