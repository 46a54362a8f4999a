"""The notifier's store and dispatcher against real providers in the test process (an SMTP server,
HTTP endpoints) and a real key bucket: what the notifier's integration tests share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from uuid import UUID

import pytest
from eventsourcing.persistence import Tracking

from kizuki.provision import provision_bus
from services.notifier.application import AlertOwed, NotifierApplication
from services.notifier.channels import load_channels
from services.notifier.dispatcher import Dispatcher
from services.notifier.domain import Notification
from services.notifier.main import open_channels
from shared.bus import connect
from shared.directory import Directory
from shared.privacy import KeyVault, MasterKey
from shared.runtime import open_store
from shared.settings import Settings
from shared.timers import now
from tests.factories import alert_requested
from tests.polling import eventually
from tests.providers import Endpoint, Mailbox, http_endpoint, smtp_server

FAST_RETRIES = """
[delivery]
timeout_seconds = {timeout}
attempts_per_channel = 3
first_retry_seconds = 0.05
max_retry_seconds = 0.2
"""


@pytest.fixture(name="mail")
def mail_fixture() -> Iterator[tuple[int, Mailbox]]:
    with smtp_server() as server:
        yield server


@pytest.fixture(name="endpoint")
def endpoint_fixture() -> Iterator[tuple[str, Endpoint]]:
    with http_endpoint() as server:
        yield server


class Notifier:
    """The notifier's store and dispatcher on the given channel configuration, without the bus."""

    def __init__(
        self, settings: Settings, channels_toml: str, env: dict[str, str], vault: KeyVault | None = None
    ) -> None:
        """``vault``: bound to a bus, for receipts; staff alerts never open one."""
        path = settings.data_dir / "channels.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(channels_toml, encoding="utf-8")
        self.settings = settings
        self.config = load_channels(path)
        self.channels = open_channels(self.config, settings, env)
        self.store = open_store(NotifierApplication, settings)
        vault = vault or KeyVault(MasterKey.load(settings.master_key))
        self.dispatcher = Dispatcher(
            self.store, self.channels, self.config.delivery, vault, in_flight=self.config.in_flight()
        )
        self.sequence = 0

    def tracking(self) -> Tracking:
        self.sequence += 1
        return Tracking("EVENTS", self.sequence)

    def alert(self, directory: Directory, recipient: str = "sv-003") -> UUID:
        alert = alert_requested(recipient=recipient, tier="major")
        self.store.request_alert(
            AlertOwed.requested(alert),
            directory,
            self.channels.keys(),
            lambda d: f"http://kizuki/ack/{d}",
            now(),
            self.tracking(),
        )
        return self.last_requested()

    def last_requested(self) -> UUID:
        last = self.store.process_recorder.select_notifications(1, 1000)[-1]
        return UUID(str(last.originator_id))

    def events(self, delivery_id: UUID) -> list[Notification.Event]:
        return [
            event for event in self.store.events.get(delivery_id) if isinstance(event, Notification.Event)
        ]

    async def until_done(self, delivery_id: UUID) -> Notification:
        async def done() -> Notification | None:
            notification = self.store.find(Notification, delivery_id)
            return notification if notification and not notification.pending else None

        finished = await eventually(done, what=f"delivery {delivery_id} finished")
        assert finished is not None
        return finished


@pytest.fixture(name="running")
async def running_fixture() -> AsyncIterator[Callable[[Notifier], None]]:
    tasks: list[asyncio.Task[None]] = []

    def start(notifier: Notifier) -> None:
        tasks.append(asyncio.create_task(notifier.dispatcher.run()))

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def smtp_channel(port: int, **extra: str) -> str:
    lines = "".join(f'{key} = "{value}"\n' for key, value in extra.items())
    return f"""
[channels.email]
kind = "smtp"
host = "127.0.0.1"
port = {port}
starttls = false
sender = "kizuki@hospital.example"
{lines}"""


@pytest.fixture(name="vault")
async def vault_fixture(nats_url: str, settings: Settings) -> AsyncIterator[KeyVault]:
    """The key bucket on a real server, holding the key of the complaints the factories make."""
    await provision_bus(nats_url)
    nc = await connect(nats_url, "test")
    bound = KeyVault(MasterKey.load(settings.master_key))
    await bound.bind(nc.jetstream())
    yield bound
    await nc.close()


def webhook_channel(url: str, name: str = "email", format: str = "json") -> str:
    return f"""
[channels.{name}]
kind = "webhook"
format = "{format}"
url = "{url}"
"""
