"""What the integration tests share: a client of a provisioned nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from faststream.nats import NatsBroker
from nats.aio.client import Client

from kizuki.provision import provision_bus
from shared.bus import broker, connect


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    """Connected to a fresh nats-server with the streams and consumers provisioned."""
    await provision_bus(nats_url)
    client = await connect(nats_url, "test")
    yield client
    await client.close()


@pytest.fixture
async def consumer_broker(nc: Client, nats_url: str) -> AsyncIterator[NatsBroker]:
    """A broker for consumer loops, as a service's runtime makes one (connected by the first loop)."""
    made = broker(nats_url, "test")
    yield made
    if made._connection is not None:
        await made._connection.close()
