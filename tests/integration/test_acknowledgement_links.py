"""The one-click acknowledgement link on the notifier's real store: opening it records nothing, the
button records the acknowledgement once, and a forged, altered or expired link is refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from uuid import UUID

import pytest
from eventsourcing.persistence import Tracking
from fastapi.testclient import TestClient

from services.notifier.application import AlertOwed, NotifierApplication
from services.notifier.domain import Notification
from services.notifier.links import LinkSigner
from services.notifier.main import create_app
from shared.directory import Directory
from shared.events import NotificationAcknowledged
from shared.settings import Settings
from shared.timers import now
from tests.conftest import stored
from tests.factories import alert_requested

pytestmark = pytest.mark.integration


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """Without entering the client the lifespan does not run: the pages and the store, no bus."""
    app = create_app(settings, env={})
    yield TestClient(app)
    app.state.runtime.store.close()


def store_of(client: TestClient) -> NotifierApplication:
    store: NotifierApplication = client.app.state.runtime.store  # type: ignore[attr-defined]
    return store


def alert_to(client: TestClient, directory: Directory, signer: LinkSigner, lifetime: timedelta) -> UUID:
    """An alert to sv-003 as escalation asks for it; its link path comes back with its id."""
    alert = alert_requested()
    store_of(client).request_alert(
        AlertOwed.requested(alert),
        directory,
        ["email"],
        lambda delivery_id: f"/ack/{signer.token(delivery_id, now() + lifetime)}",
        now(),
        Tracking("EVENTS", stored(client) + 1),
    )
    [requested] = store_of(client).process_recorder.select_notifications(stored(client), 1)
    return UUID(str(requested.originator_id))


def link_in(client: TestClient, delivery_id: UUID) -> str:
    alert = store_of(client).get_notification(delivery_id)
    assert alert is not None
    return alert.text.rsplit(" ", 1)[-1]


@pytest.fixture
def signer(settings: Settings) -> LinkSigner:
    return LinkSigner.from_file(settings.ack_link_secret)


def test_opening_the_link_asks_and_the_button_acknowledges_once(
    client: TestClient, directory: Directory, signer: LinkSigner
) -> None:
    delivery_id = alert_to(client, directory, signer, timedelta(hours=1))
    link = link_in(client, delivery_id)
    before = stored(client)

    opened = client.get(link)  # what a mail scanner does too
    assert opened.status_code == 200
    assert '<form method="post">' in opened.text
    assert "supervisor acknowledgement" in opened.text
    assert opened.headers["Referrer-Policy"] == "no-referrer"
    assert stored(client) == before

    confirmed = client.post(link)
    assert confirmed.status_code == 200
    assert "acknowledged" in confirmed.text
    assert client.post(link).status_code == 200
    assert stored(client) == before + 1
    assert "Already acknowledged" in client.get(link).text

    [acknowledged] = [
        event
        for event in store_of(client).events.get(delivery_id)
        if isinstance(event, Notification.Acknowledged)
    ]
    wire = store_of(client).wire_event(acknowledged)
    assert isinstance(wire, NotificationAcknowledged)
    assert (wire.by, wire.duty, wire.delivery_id) == ("sv-003", "supervisor_acknowledgement", delivery_id)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_forged_altered_or_expired_link_is_refused_with_a_page_and_records_nothing(
    client: TestClient, directory: Directory, signer: LinkSigner, method: str
) -> None:
    delivery_id = alert_to(client, directory, signer, timedelta(hours=1))
    link = link_in(client, delivery_id)
    expired = alert_to(client, directory, signer, -timedelta(seconds=1))
    before = stored(client)
    claims, mac = link.rsplit(".", 1)
    refusals = {
        claims + "." + mac[::-1]: 403,  # altered signature
        "/ack/" + ("0" if claims[5] != "0" else "1") + claims[6:] + "." + mac: 403,  # another alert
        "/ack/" + LinkSigner(b"k" * 32).token(delivery_id, now() + timedelta(hours=1)): 403,  # another key
        "/ack/nonsense": 403,
        link_in(client, expired): 410,
    }
    for refused, code in refusals.items():
        response = client.request(method, refused)
        assert response.status_code == code, refused
        assert response.headers["content-type"].startswith("text/html")
        assert "Link refused" in response.text
    assert stored(client) == before
